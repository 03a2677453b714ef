package pebble_test

import (
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestRetention(t *testing.T) {
	open := func(t *testing.T, dir string, ttl time.Duration, now func() time.Time) runtime.Store {
		s, err := pebble.Open(dir, pebble.WithIdempotencyTTL(ttl), pebble.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.RunRetention(t, storetest.RetentionFactory{
		Open: func(t *testing.T, ttl time.Duration, now func() time.Time) runtime.Store {
			return open(t, t.TempDir(), ttl, now)
		},
		Reopen: func(t *testing.T, s runtime.Store, ttl time.Duration, now func() time.Time) runtime.Store {
			dir := s.(*pebble.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir, ttl, now)
		},
	})
}
