package pebble

import (
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
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

	var stop atomic.Bool
	var started atomic.Int32
	var wg sync.WaitGroup
	spinners := int32(2 * goruntime.GOMAXPROCS(0))
	for range spinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			for !stop.Load() {
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	for started.Load() < spinners {
		goruntime.Gosched()
	}

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
