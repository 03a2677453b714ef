package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// waitForLockWaiters polls pg_stat_activity until n sessions of the store's
// database wait on a lock while appending (a call of an append function,
// or a lone append's statement, which updates log_head), proving they are
// blocked rather than not yet started. answered reports that an append
// expected to block has returned instead: the test then fails at once
// rather than waiting for ever.
func waitForLockWaiters(t *testing.T, s *Store, n int, answered func() bool) {
	t.Helper()
	for {
		if answered() {
			t.Fatal("an append that should wait for the open transaction returned instead")
		}
		var waiting int
		err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND (query LIKE '%append_%' OR query LIKE '%log_head%') AND query LIKE '%'||$1||'%'`,
			pgx.Identifier{s.opt.schema}.Sanitize()).Scan(&waiting)
		if err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if waiting >= n {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test ended while waiting for a blocked append")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestPositionsCommitOrder is the sequence-gap test: an append that has
// taken its position but not committed must not let a later append's
// position become visible before it. Writer A takes position 1 and holds
// its transaction open; writer B, through another pool (as another process
// would), must block instead of committing position 2; while A is open a
// reader sees nothing. When A commits (or aborts), B completes and the log
// is gap-free in commit order.
func TestPositionsCommitOrder(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(map[bool]string{false: "FirstCommits", true: "FirstAborts"}[abort], func(t *testing.T) {
			t.Parallel()
			a := newStore(t)
			b := openIn(t, a.opt.schema)
			reader := openIn(t, a.opt.schema)
			holding, release := make(chan struct{}), make(chan struct{})
			a.testHookBeforeCommit = func() { close(holding); <-release }
			// A test that fails while A holds its transaction open still
			// lets it end, so that closing the stores does not wait for ever
			// (cleanups run last-registered first: this before the stores').
			free := sync.OnceFunc(func() { close(release) })
			t.Cleanup(free)

			actx, cancelA := context.WithCancel(t.Context())
			defer cancelA()
			sa, sb := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}
			type result struct {
				res runtime.AppendResult
				err error
			}
			ra, rb := make(chan result, 1), make(chan result, 1)
			go func() {
				res, err := a.Append(actx, runtime.AppendRequest{Stream: sa, Expected: runtime.NoStream, Events: storetest.Events(2)})
				ra <- result{res, err}
			}()
			<-holding
			go func() {
				res, err := b.Append(t.Context(), runtime.AppendRequest{Stream: sb, Expected: runtime.NoStream, Events: storetest.Events(1)})
				rb <- result{res, err}
			}()
			waitForLockWaiters(t, a, 1, func() bool { return len(rb) > 0 })

			// A holds positions 1-2 uncommitted, B is blocked: nothing is visible.
			if h, err := reader.Head(t.Context()); err != nil || h != 0 {
				t.Errorf("Head while the first append is open = %d, %v; want 0", h, err)
			}
			if recs, err := storetest.Collect(reader.ReadAll(t.Context(), 0)); err != nil || len(recs) != 0 {
				t.Errorf("ReadAll while the first append is open = %d records, %v; want none", len(recs), err)
			}
			select {
			case r := <-rb:
				t.Fatalf("second append finished while the first held its positions: %+v, %v", r.res, r.err)
			default:
			}

			if abort {
				cancelA()
			}
			free()
			resA, resB := <-ra, <-rb
			if resB.err != nil {
				t.Fatalf("second append: %v", resB.err)
			}
			recs, err := storetest.Collect(reader.ReadAll(t.Context(), 0))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if abort {
				if !errors.Is(resA.err, context.Canceled) {
					t.Errorf("aborted append: %v, want context.Canceled", resA.err)
				}
				if resB.res.FirstPosition != 1 {
					t.Errorf("after the abort the second append got position %d, want 1 (no gap)", resB.res.FirstPosition)
				}
				want = []string{`T/"b"@1`}
			} else {
				if resA.err != nil {
					t.Fatalf("first append: %v", resA.err)
				}
				if resA.res.LastPosition != 2 || resB.res.FirstPosition != 3 {
					t.Errorf("positions A %+v B %+v; want A 1-2, B 3", resA.res, resB.res)
				}
				want = []string{`T/"a"@1`, `T/"a"@2`, `T/"b"@1`}
			}
			if len(recs) != len(want) {
				t.Fatalf("ReadAll = %d records, want %v", len(recs), want)
			}
			for i, r := range recs {
				if got := fmt.Sprintf("%s@%d", r.Stream, r.Version); got != want[i] || r.Position != uint64(i+1) {
					t.Errorf("record %d = %s at position %d, want %s at %d", i, got, r.Position, want[i], i+1)
				}
			}
		})
	}
}

// TestTailNeverSkips runs writers on two pools (standing in for two
// processes, one grouping appends, one sharing flush rounds) while a reader follows the whole log with Wait and ReadAll:
// every batch it reads must continue exactly where the previous one ended.
func TestTailNeverSkips(t *testing.T) {
	t.Parallel()
	s1 := newStore(t)
	// s1 groups its appends; s2 does not, and its appends beyond its 2
	// connections share the flusher's rounds.
	s2 := openIn(t, s1.opt.schema, WithMaxConns(2), WithGroups(0))
	const writers, appends = 8, 25
	total := 0
	for w := range writers {
		total += appends * (1 + w%3)
	}
	var wg sync.WaitGroup
	for w := range writers {
		s := []*Store{s1, s2}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := runtime.StreamID{Type: "T", ID: fmt.Sprint(w % 3)}
			for range appends {
				for {
					v, err := s.StreamVersion(t.Context(), st)
					if err != nil {
						t.Error(err)
						return
					}
					_, err = s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: v, Events: storetest.Events(1 + w%3)})
					if errors.Is(err, runtime.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		}()
	}
	reader := openIn(t, s1.opt.schema, WithPollInterval(time.Hour))
	var after uint64
	versions := map[string]uint64{}
	for after < uint64(total) {
		if _, err := reader.Wait(t.Context(), after); err != nil {
			t.Fatal(err)
		}
		for r, err := range reader.ReadAll(t.Context(), after) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Position != after+1 {
				t.Fatalf("read position %d after %d: a gap", r.Position, after)
			}
			if r.Version != versions[r.Stream.ID]+1 {
				t.Fatalf("stream %s: version %d after %d", r.Stream, r.Version, versions[r.Stream.ID])
			}
			versions[r.Stream.ID] = r.Version
			after = r.Position
		}
	}
	wg.Wait()
	if h, err := reader.Head(t.Context()); err != nil || h != uint64(total) {
		t.Errorf("Head = %d, %v; want %d", h, err, total)
	}
}

// TestWaitWokenByNotify checks that Wait learns of another process's append
// through NOTIFY alone (its poll interval is an hour), and through polling
// alone when notifications are off.
func TestWaitWokenByNotify(t *testing.T) {
	tests := []struct {
		name   string
		waiter []Option
		writer []Option
	}{
		{"Notify", []Option{WithPollInterval(time.Hour)}, nil},
		{"PollOnly", []Option{WithNotify(false), WithPollInterval(10 * time.Millisecond)}, []Option{WithNotify(false)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := pgtest.Schema(t)
			waiter := openIn(t, schema, tc.waiter...)
			writer := openIn(t, schema, tc.writer...)
			for round := range uint64(3) {
				got := make(chan error, 1)
				go func() {
					p, err := waiter.Wait(t.Context(), round)
					if err == nil && p != round+1 {
						err = fmt.Errorf("Wait(after %d) = %d, want %d", round, p, round+1)
					}
					got <- err
				}()
				if _, err := writer.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "x"},
					Expected: round, Events: storetest.Events(1)}); err != nil {
					t.Fatal(err)
				}
				if err := <-got; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
