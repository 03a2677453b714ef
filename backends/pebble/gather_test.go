package pebble

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestGatherBacksOffUnderCPULoad checks that the writer stops yielding
// when its yields hand the processors to other work instead of bringing
// requests: with every processor busy spinning, a yield waits for the
// scheduler to preempt a spinner, and without the back-off each group
// would pay that wait.
func TestGatherBacksOffUnderCPULoad(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	w := &writer{s: s}

	defer spin(2 * goruntime.GOMAXPROCS(0))()

	// A yield that happens to be fast (the spinners not yet scheduled)
	// does not back off; keep yielding until one is slow.
	for w.yieldOff.IsZero() && w.yields < 1000 {
		w.gather()
	}
	if w.yieldOff.IsZero() {
		t.Fatalf("no back-off after %d yields with every processor busy", w.yields)
	}
	if w.backoff < yieldBackoffMin {
		t.Fatalf("back-off %v, want at least %v", w.backoff, yieldBackoffMin)
	}
	n := w.yields
	w.gather()
	if w.yields != n {
		t.Fatal("gather yielded during its back-off")
	}
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
