package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestRetention runs the retention suite, each store in its own schema.
func TestRetention(t *testing.T) {
	storetest.RunRetention(t, storetest.RetentionFactory{
		Open: func(t *testing.T, ttl time.Duration, now func() time.Time) runtime.Store {
			return newStore(t, WithIdempotencyTTL(ttl), WithClock(now))
		},
		Reopen: func(t *testing.T, s runtime.Store, ttl time.Duration, now func() time.Time) runtime.Store {
			ps := s.(*Store)
			if err := ps.Close(); err != nil && !errors.Is(err, runtime.ErrClosed) {
				t.Fatalf("Close: %v", err)
			}
			return openIn(t, ps.opt.schema, WithIdempotencyTTL(ttl), WithClock(now))
		},
	})
}
