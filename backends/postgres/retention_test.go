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

// TestExpiredKeyEveryPath appends with a key on each single-append path
// (lone, pipelined with its flush, the call alone with the flusher's
// round), lets the key expire and appends with it again: each path deletes
// the expired record ahead of its append (queueExpire) and records the key
// afresh, and a retry while the new record lives is a duplicate.
func TestExpiredKeyEveryPath(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*Store)
	}{
		{"lone", func(*Store) {}},
		{"pipelined", func(s *Store) { s.lone.others.Store(true) }},
		{"flusher", func(s *Store) { s.lone.others.Store(true); s.selfFlushMax = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			s := newStore(t, WithIdempotencyTTL(time.Hour), WithClock(clock.Now), WithGroups(0), WithNotify(false))
			st := runtime.StreamID{Type: "T", ID: "k"}
			keyed := func(expected uint64) (runtime.AppendResult, error) {
				tc.setup(s) // before each append: an append of its own clears others
				return s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: expected, Events: storetest.Events(1), IdempotencyKey: "key"})
			}
			if _, err := keyed(runtime.NoStream); err != nil {
				t.Fatal(err)
			}
			var de *runtime.DuplicateError
			if _, err := keyed(runtime.NoStream); !errors.As(err, &de) {
				t.Fatalf("retry while the key lives: %v, want a duplicate", err)
			}
			clock.Advance(time.Hour)
			res, err := keyed(1)
			if err != nil || res.LastVersion != 2 {
				t.Fatalf("append with the expired key = %+v, %v; want version 2", res, err)
			}
			rec, err := s.LoadIdempotency(t.Context(), "key")
			if err != nil || rec.Position != res.LastPosition {
				t.Fatalf("LoadIdempotency = %+v, %v; want position %d", rec, err, res.LastPosition)
			}
			if _, err := keyed(1); !errors.As(err, &de) || de.Existing.Version != 2 {
				t.Fatalf("retry of the new record: %v, want a duplicate at version 2", err)
			}
		})
	}
}
