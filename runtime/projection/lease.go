package projection

import (
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// LeaseTTL sets the lease TTL of projections (and, through saga.Projection,
// of sagas) on a store that implements lease.Leaser (default lease.DefaultTTL,
// at least lease.MinTTL). Failover after the holder dies takes at most
// ttl + ttl/5; a shorter TTL means faster failover but more renewals (one
// small write per projection every ttl/3) and a greater chance that a long
// pause (GC, a stalled network) makes a healthy holder lose its lease.
func LeaseTTL(ttl time.Duration) Option {
	return func(c *readside.Config) { c.LeaseTTL = max(ttl, lease.MinTTL) }
}

// LeaseHolder sets the holder name this process's runners use in leases
// (default: host name, process id and a random suffix, unique per
// process). Status and the store's lease table show it.
func LeaseHolder(name string) Option {
	return func(c *readside.Config) {
		if name != "" {
			c.LeaseHolder = name
		}
	}
}

// WithoutLease runs the projection in every process even when the store
// implements lease.Leaser: for read models kept in process memory (each process
// has its own copy and must feed it). Its checkpoint must then be its own
// (exactly-once, Projection.Position), or distinct per process.
func WithoutLease() Option {
	return func(c *readside.Config) { c.NoLease = true }
}

// Progress reports where a projection (or saga) runner is.
type Progress struct {
	// Name is the projection's name.
	Name string
	// Position is the last position processed, Head the store's head as
	// last seen, Lag = Head - Position.
	Position, Head, Lag uint64
	// State is the runner's state.
	State State
	// EventTime is when the event at Position was appended (zero before
	// this runner processed any). While Lag > 0, the time since EventTime
	// bounds from above how long the oldest unprocessed event has waited.
	EventTime time.Time
}

// Metrics is an optional extension of instrument.Metrics for the read
// side: when the metrics given to instrument.New implement it, the projection and
// saga runners over that instrumented store report lease changes and
// progress to it. metrics/prometheus implements it.
type Metrics interface {
	// ObserveLease is called when this process acquires, loses or releases
	// a lease.
	ObserveLease(e lease.Event)
	// ObserveProjection is called when a runner's state changes, after
	// each checkpoint and each time it catches up.
	ObserveProjection(p Progress)
}

// readSideMetricsOf finds Metrics behind store's wrappers.
func readSideMetricsOf(store runtime.Store) Metrics {
	return readside.MetricsOf[Metrics](store)
}
