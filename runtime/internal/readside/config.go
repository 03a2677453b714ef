package readside

import (
	"context"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/wrap"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// Config is how a projection runs: what projection.Option sets. It lives
// here so that saga.Run can read the lease settings of the options passed
// through saga.Projection, and hand its own lease tenure (Held) to the
// projection that feeds the saga.
type Config struct {
	CheckpointEvents   int
	CheckpointInterval time.Duration
	Attempts           int
	RetryDelay         time.Duration
	LeaseTTL           time.Duration
	LeaseHolder        string
	NoLease            bool
	Partitions         int
	SkipDeleted        bool                                                 // see projection.SkipDeletedStreams
	OnDeleted          func(ctx context.Context, t runtime.Tombstone) error // see projection.OnStreamDeleted
	// Held is the lease session saga.Run holds for its projection.
	Held *Session
}

// Holder returns the lease holder name of the runners configured by c.
func (c *Config) Holder() string {
	if c.LeaseHolder != "" {
		return c.LeaseHolder
	}
	return Holder()
}

// TracerOf returns the tracer of the first instrumented wrapper of store
// that has one (telemetry.Instrumented), or nil.
func TracerOf(store runtime.Store) telemetry.Tracer {
	return wrap.Find(store, func(s runtime.Store) (telemetry.Tracer, bool) {
		i, ok := s.(telemetry.Instrumented)
		if !ok {
			return nil, false
		}
		t := i.Tracer()
		return t, t != nil
	})
}

// MetricsOf returns the metrics receiver of the first instrumented wrapper
// of store whose receiver implements T (projection.Metrics, saga.Metrics),
// or the zero T.
func MetricsOf[T any](store runtime.Store) T {
	return wrap.Find(store, func(s runtime.Store) (T, bool) {
		i, ok := s.(telemetry.Instrumented)
		if !ok {
			var zero T
			return zero, false
		}
		m, ok := i.Observer().(T)
		return m, ok
	})
}
