package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

func (h *harness) testWait(t *testing.T) {
	t.Run("AlreadyPast", func(t *testing.T) {
		s := h.open(t)
		mustAppend(t, s, stream("T", "w"), runtime.NoStream, Events(3)...)
		for _, after := range []uint64{0, 1, 2} {
			if p, err := s.Wait(ctx(t), after); err != nil || p != 3 {
				t.Errorf("Wait(after %d) = %d, %v; want 3", after, p, err)
			}
		}
	})
	t.Run("Wakes", func(t *testing.T) {
		s := h.open(t)
		for round := range 3 {
			hd := head(t, s)
			const waiters = 8
			got := make(chan error, waiters)
			for range waiters {
				go func() {
					p, err := s.Wait(ctx(t), hd)
					if err == nil && p <= hd {
						err = fmt.Errorf("Wait(after %d) returned %d", hd, p)
					}
					got <- err
				}()
			}
			mustAppend(t, s, stream("T", "w"), uint64(round*2), Events(2)...)
			for range waiters {
				if err := <-got; err != nil {
					t.Error(err)
				}
			}
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		s := h.open(t)
		mustAppend(t, s, stream("T", "w"), runtime.NoStream, Events(1)...)
		c, cancel := context.WithCancel(ctx(t))
		done := make(chan error, 1)
		go func() {
			_, err := s.Wait(c, 1)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel: %v, want context.Canceled", err)
		}
		// The store is still usable.
		mustAppend(t, s, stream("T", "w"), 1, Events(1)...)
		if p, err := s.Wait(ctx(t), 1); err != nil || p != 2 {
			t.Errorf("Wait(after 1) = %d, %v; want 2", p, err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		s := h.open(t)
		done := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := s.Wait(ctx(t), 0)
				done <- err
			}()
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for range 4 {
			if err := <-done; !errors.Is(err, runtime.ErrClosed) {
				t.Errorf("Wait during Close: %v, want ErrClosed", err)
			}
		}
	})
}

func (h *harness) testConcurrency(t *testing.T) {
	t.Run("OneStream", h.concurrentRounds)
	t.Run("OneStreamFreeRun", h.concurrentOneStream)
	t.Run("ManyStreams", h.concurrentManyStreams)
	t.Run("CatchUp", h.concurrentCatchUp)
	t.Run("ConflictActualVisible", h.conflictActualVisible)
}

// conflictActualVisible races writers on one stream, each retrying from
// what it reads: a loser's ConflictError.Actual must already be visible to
// StreamVersion and ReadStream when the error is returned, or a caller that
// reloads after a conflict decides on a version that the store has refused.
func (h *harness) conflictActualVisible(t *testing.T) {
	s := h.open(t)
	st := stream("T", "actual")
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				v, err := s.StreamVersion(ctx(t), st)
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: v, Events: Events(1)})
				var ce *runtime.ConflictError
				switch {
				case err == nil:
					done++
				case errors.As(err, &ce):
					seen, err := s.StreamVersion(ctx(t), st)
					if err != nil {
						errs <- err
						return
					}
					if seen < ce.Actual {
						errs <- fmt.Errorf("conflict reported actual version %d, but StreamVersion right after is %d", ce.Actual, seen)
						return
					}
					recs, err := Collect(s.ReadStream(ctx(t), st, ce.Actual-1))
					if err != nil || len(recs) == 0 || recs[0].Version != ce.Actual {
						errs <- fmt.Errorf("conflict reported actual version %d, but ReadStream after %d = %d records, %v", ce.Actual, ce.Actual-1, len(recs), err)
						return
					}
				default:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// concurrentRounds races 32 goroutines on one stream in rounds: in each
// round all of them read the same version, then all append with it as the
// expected version at once. Exactly one wins; every loser gets a
// *ConflictError whose Actual is the winner's new version.
func (h *harness) concurrentRounds(t *testing.T) {
	s := h.open(t)
	st := stream("T", "rounds")
	const (
		goroutines = 32
		rounds     = 16
	)
	var want []string
	for round := range rounds {
		var (
			read, done sync.WaitGroup
			results    [goroutines]runtime.AppendResult
			errs       [goroutines]error
			seen       [goroutines]uint64
		)
		start := make(chan struct{})
		for g := range goroutines {
			read.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				v, err := s.StreamVersion(ctx(t), st)
				seen[g] = v
				read.Done()
				if err != nil {
					errs[g] = err
					return
				}
				<-start
				evs := make([]runtime.EventData, 1+g%3)
				for i := range evs {
					evs[i] = runtime.EventData{Name: "Raced", Data: fmt.Appendf(nil, "r%d-g%d-e%d", round, g, i)}
				}
				results[g], errs[g] = s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: v, Events: evs})
			}()
		}
		read.Wait()
		close(start)
		done.Wait()
		before := uint64(len(want))
		winner := -1
		for g := range goroutines {
			if seen[g] != before {
				t.Fatalf("round %d: goroutine %d read version %d, want %d", round, g, seen[g], before)
			}
			if errs[g] == nil {
				if winner >= 0 {
					t.Fatalf("round %d: goroutines %d and %d both appended with expected version %d", round, winner, g, before)
				}
				winner = g
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no append succeeded: %v", round, errs[0])
		}
		n := uint64(1 + winner%3)
		res := results[winner]
		if res.FirstVersion != before+1 || res.LastVersion != before+n || res.FirstPosition != before+1 || res.LastPosition != before+n {
			t.Errorf("round %d: winner got %+v, want versions and positions %d..%d", round, res, before+1, before+n)
		}
		for g := range goroutines {
			if g != winner {
				wantConflict(t, fmt.Sprintf("round %d loser %d", round, g), errs[g], st, before, before+n)
			}
		}
		for i := range n {
			want = append(want, fmt.Sprintf("r%d-g%d-e%d", round, winner, i))
		}
	}
	recs := readStream(t, s, st, 0)
	if len(recs) != len(want) {
		t.Fatalf("stream has %d events, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if r.Version != uint64(i+1) || r.Position != uint64(i+1) || string(r.Data) != want[i] {
			t.Errorf("event %d: v%d p%d %q, want v%d p%d %q", i, r.Version, r.Position, r.Data, i+1, i+1, want[i])
		}
	}
}

type claim struct {
	res  runtime.AppendResult
	data []string
}

// concurrentOneStream races 32 goroutines on one stream with exact
// expected versions: exactly one winner per version, no gaps, and every
// loser gets a *ConflictError with an Actual past what it expected.
func (h *harness) concurrentOneStream(t *testing.T) {
	s := h.open(t)
	st := stream("T", "hot")
	const (
		goroutines = 32
		target     = 96
	)
	var (
		mu     sync.Mutex
		claims []claim
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for attempt := 0; ; attempt++ {
				v, err := s.StreamVersion(ctx(t), st)
				if err != nil {
					t.Errorf("goroutine %d: StreamVersion: %v", g, err)
					return
				}
				if v >= target {
					return
				}
				n := 1 + g%3
				evs := make([]runtime.EventData, n)
				data := make([]string, n)
				for i := range evs {
					data[i] = fmt.Sprintf("g%d-a%d-e%d", g, attempt, i)
					evs[i] = runtime.EventData{Name: "Raced", Data: []byte(data[i])}
				}
				res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: v, Events: evs})
				if err != nil {
					var ce *runtime.ConflictError
					if !errors.As(err, &ce) {
						t.Errorf("goroutine %d: append at %d: %v, want a *ConflictError", g, v, err)
						return
					}
					if ce.Expected != v || ce.Actual <= v || ce.Stream != st {
						t.Errorf("goroutine %d: conflict %+v, want expected %d and actual > %d", g, *ce, v, v)
					}
					continue
				}
				if res.FirstVersion != v+1 || res.LastVersion != v+uint64(n) {
					t.Errorf("goroutine %d: append at %d got versions %d..%d", g, v, res.FirstVersion, res.LastVersion)
				}
				mu.Lock()
				claims = append(claims, claim{res, data})
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	recs := readStream(t, s, st, 0)
	final := version(t, s, st)
	if final < target || uint64(len(recs)) != final {
		t.Fatalf("stream at version %d with %d records, want ≥ %d and equal", final, len(recs), target)
	}
	owner := make([]int, final+1)
	for ci, c := range claims {
		for i, d := range c.data {
			v := c.res.FirstVersion + uint64(i)
			if v > final {
				t.Fatalf("claimed version %d beyond final %d", v, final)
			}
			if owner[v] != 0 {
				t.Errorf("version %d won by two appends", v)
			}
			owner[v] = ci + 1
			r := recs[v-1]
			if r.Version != v || string(r.Data) != d || r.Position != c.res.FirstPosition+uint64(i) {
				t.Errorf("version %d: record v%d p%d %q, want p%d %q", v, r.Version, r.Position, r.Data, c.res.FirstPosition+uint64(i), d)
			}
		}
	}
	for v := uint64(1); v <= final; v++ {
		if owner[v] == 0 {
			t.Errorf("version %d has no winner", v)
		}
		if recs[v-1].Position != v {
			t.Errorf("version %d at position %d, want %d (one stream, gap-free)", v, recs[v-1].Position, v)
		}
	}
	if hd := head(t, s); hd != final {
		t.Errorf("Head = %d, want %d", hd, final)
	}
}

// concurrentManyStreams appends from many goroutines to many streams and
// checks positions unique, gap-free and in ReadAll order, and each stream's
// versions contiguous.
func (h *harness) concurrentManyStreams(t *testing.T) {
	s := h.open(t)
	const (
		goroutines = 16
		appends    = 12
		streams    = 6
	)
	var (
		mu     sync.Mutex
		claims []claim
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range appends {
				st := stream("T", fmt.Sprint((g+i)%streams))
				n := 1 + (g+i)%3
				evs := make([]runtime.EventData, n)
				data := make([]string, n)
				for j := range evs {
					data[j] = fmt.Sprintf("g%d-i%d-e%d", g, i, j)
					evs[j] = runtime.EventData{Name: "E", Data: []byte(data[j])}
				}
				res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs})
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				mu.Lock()
				claims = append(claims, claim{res, data})
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	all := readAll(t, s, 0)
	total := 0
	for _, c := range claims {
		total += len(c.data)
	}
	if len(all) != total {
		t.Fatalf("ReadAll yielded %d records, want %d", len(all), total)
	}
	for i, r := range all {
		if r.Position != uint64(i+1) {
			t.Fatalf("ReadAll record %d has position %d: positions not gap-free in order", i, r.Position)
		}
	}
	for _, c := range claims {
		for j, d := range c.data {
			r := all[c.res.FirstPosition+uint64(j)-1]
			if string(r.Data) != d || r.Version != c.res.FirstVersion+uint64(j) {
				t.Errorf("position %d: v%d %q, want v%d %q", r.Position, r.Version, r.Data, c.res.FirstVersion+uint64(j), d)
			}
		}
	}
	next := map[runtime.StreamID]uint64{}
	for _, r := range all {
		next[r.Stream]++
		if r.Version != next[r.Stream] {
			t.Errorf("position %d: %s version %d, want %d (versions must follow positions)", r.Position, r.Stream, r.Version, next[r.Stream])
		}
	}
	for st, v := range next {
		if got := version(t, s, st); got != v {
			t.Errorf("StreamVersion(%s) = %d, want %d", st, got, v)
		}
	}
	if hd := head(t, s); hd != uint64(total) {
		t.Errorf("Head = %d, want %d", hd, total)
	}
}

// concurrentCatchUp runs store-level catch-up readers (ReadAll, then Wait,
// in a loop) while 8 writers append: every reader gets every event exactly
// once, in position order.
func (h *harness) concurrentCatchUp(t *testing.T) {
	s := h.open(t)
	const (
		writers = 8
		appends = 15
		readers = 3
	)
	total := 0
	for w := range writers {
		for i := range appends {
			total += 1 + (w+i)%2
		}
	}
	mustAppend(t, s, stream("T", "pre"), runtime.NoStream, Events(3)...)
	total += 3

	got := make([][]runtime.Record, readers)
	var rwg, wwg sync.WaitGroup
	start := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(start) }) }
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if r == 0 {
				defer release()
			}
			var pos uint64
			for pos < uint64(total) {
				for rec, err := range s.ReadAll(ctx(t), pos) {
					if err != nil {
						t.Errorf("reader %d: ReadAll(after %d): %v", r, pos, err)
						return
					}
					if rec.Position != pos+1 {
						t.Errorf("reader %d: got position %d after %d", r, rec.Position, pos)
						return
					}
					pos = rec.Position
					got[r] = append(got[r], rec)
					if r == 0 && pos == 2 {
						release() // writers start once a reader is mid-way
					}
				}
				if pos >= uint64(total) {
					break
				}
				if _, err := s.Wait(ctx(t), pos); err != nil {
					t.Errorf("reader %d: Wait(after %d): %v", r, pos, err)
					return
				}
			}
		}()
	}
	for w := range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			<-start
			var v uint64
			for i := range appends {
				n := 1 + (w+i)%2
				if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: stream("W", fmt.Sprint(w)), Expected: v, Events: EventsWith(fmt.Sprintf("w%d-%d-", w, i), n)}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				v += uint64(n)
			}
		}()
	}
	wwg.Wait()
	rwg.Wait()
	all := readAll(t, s, 0)
	for r := range readers {
		if len(got[r]) != len(all) {
			t.Errorf("reader %d got %d events, want %d", r, len(got[r]), len(all))
			continue
		}
		for i := range all {
			if msg := diffRecord(all[i], got[r][i]); msg != "" {
				t.Errorf("reader %d event %d: %s", r, i, msg)
			}
		}
	}
}
