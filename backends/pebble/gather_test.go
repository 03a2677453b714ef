package pebble

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestGatherBacksOffUnderCPULoad checks that the writer stops yielding
// when its yields hand the processors to other work instead of bringing
// requests: with every processor busy spinning, a yield waits for the
// scheduler to preempt a spinner, and without the back-off each group
// would pay that wait. The first back-off waits for a few slow yields in
// a row, the back-off doubles while the load lasts, is counted in Stats,
// and ends with the first fast yield after the load.
func TestGatherBacksOffUnderCPULoad(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	w := &writer{s: s}

	stop := spin(2 * goruntime.GOMAXPROCS(0))
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	// Gather until a yield backs off, again and again. A yield that
	// happens to be fast (the spinners not yet scheduled) does not back
	// off and restarts the sequence: the back-off after it starts again
	// at yieldBackoffMin, after yieldStrikes slow yields in a row; every
	// other back-off doubles the one before, up to yieldBackoffMax.
	backoffs, doubled := 0, 0
	for w.backoff < yieldBackoffMax || doubled < 2 {
		if backoffs++; backoffs > 200 {
			t.Fatalf("back-off still %v after 200, with every processor busy", w.backoff)
		}
		prev, restarted := w.backoff, w.backoff == 0
		w.yieldOff = time.Time{} // the previous back-off is over
		for n := w.yields; w.yieldOff.IsZero(); {
			if w.yields >= n+1000 {
				t.Fatalf("no back-off after 1000 yields with every processor busy")
			}
			start, strikes := time.Now(), w.strikes
			w.gather()
			if w.yieldOff.IsZero() {
				restarted = restarted || w.backoff == 0
				continue
			}
			if w.yieldOff.Sub(start) < w.backoff {
				t.Fatalf("back-off of %v ends %v after the yield began", w.backoff, w.yieldOff.Sub(start))
			}
			want := min(2*prev, yieldBackoffMax)
			if restarted {
				want = yieldBackoffMin
				if strikes != yieldStrikes-1 {
					t.Fatalf("back-off from none after %d slow yields in a row, want %d", strikes+1, yieldStrikes)
				}
			} else {
				doubled++
			}
			if w.backoff != want {
				t.Fatalf("back-off %v after %v (restarted: %v), want %v", w.backoff, prev, restarted, want)
			}
		}
	}
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Extra["gather_backoffs"], int64(backoffs); got != want {
		t.Fatalf("Stats gather_backoffs = %d, want %d", got, want)
	}

	// During a back-off, gathering does not yield at all.
	w.yieldOff = time.Now().Add(time.Hour)
	n := w.yields
	w.gather()
	if w.yields != n {
		t.Fatal("gather yielded during its back-off")
	}

	// Once the load is gone, the first fast yield ends the back-off.
	stop()
	stop = nil
	w.yieldOff = time.Time{}
	for range 1000 {
		if w.gather(); w.backoff == 0 {
			return
		}
		w.yieldOff = time.Time{}
	}
	t.Fatalf("back-off still %v after 1000 yields with the processors idle", w.backoff)
}

// TestStatsCommits checks the commits figure of Stats: one per group, so
// one per append for a lone appender, and never more than one per append
// when appenders race.
func TestStatsCommits(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	commits := func() int64 {
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Extra["commits"]
	}
	if c := commits(); c != 0 {
		t.Fatalf("commits after Open = %d, want 0", c)
	}
	st := runtime.StreamID{Type: "A", ID: "1"}
	for i := range 10 {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: []runtime.EventData{ev("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if c := commits(); c != 10 {
		t.Fatalf("commits after 10 appends in turn = %d, want 10", c)
	}
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := runtime.StreamID{Type: "B", ID: fmt.Sprint(w)}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{ev("y")}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c := commits() - 10; c < 1 || c > 64 {
		t.Fatalf("64 racing appends took %d commits, want 1 to 64", c)
	}
}

// spin starts n goroutines that each keep a processor busy, waits until
// all of them have run, and returns the function that stops them.
func spin(n int) (stop func()) {
	var quit atomic.Bool
	var started atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			for !quit.Load() {
			}
		}()
	}
	for started.Load() < int32(n) {
		goruntime.Gosched()
	}
	return func() {
		quit.Store(true)
		wg.Wait()
	}
}
