package projection_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// TestSplitProjectionByName checks the names a projection split with
// Partitions answers to: WaitFor with its own name waits for every
// partition, Rebuild with its own name is refused with ErrInvalid naming
// the partitions, and an unknown name is still ErrNotFound.
func TestSplitProjectionByName(t *testing.T) {
	t.Parallel()
	mem := memory.New()
	var mu sync.Mutex
	seen := map[uint64]int{}
	release := make(chan struct{})
	g := projection.NewGroup(mem)
	if err := g.Add(projection.Projection{Name: "split", Handle: func(ctx context.Context, rec runtime.Record) error {
		if p, _ := projection.PartitionFrom(ctx); p.Index == 2 {
			<-release // partition 2 lags until released
		}
		mu.Lock()
		seen[rec.Position]++
		mu.Unlock()
		return nil
	}, Reset: func(context.Context) error { return nil }}, projection.Partitions(3)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var head uint64
	for i := range 30 {
		res, err := mem.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: fmt.Sprint("s", i)},
			Expected: runtime.NoStream, Events: []runtime.EventData{{Name: "e", Schema: 1, Data: []byte{1}}}})
		if err != nil {
			t.Fatal(err)
		}
		head = res.LastPosition
	}
	// Partition 2 is held back, so waiting for the whole projection must
	// not return yet.
	short, stop := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err := g.WaitFor(short, "split", head)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(split) with partition 2 held back = %v, want the context's deadline", err)
	}
	close(release)
	if err := g.WaitFor(t.Context(), "split", head); err != nil {
		t.Fatalf("WaitFor(split) = %v", err)
	}
	mu.Lock()
	for p := uint64(1); p <= head; p++ {
		if seen[p] != 1 {
			t.Errorf("position %d handled %d times once WaitFor(split) returned, want 1", p, seen[p])
		}
	}
	mu.Unlock()

	err = g.Rebuild(t.Context(), "split")
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "3 partitions") {
		t.Errorf("Rebuild(split) = %v, want ErrInvalid naming the 3 partitions", err)
	}
	if err := g.Rebuild(t.Context(), projection.PartitionName("split", projection.Partition{Index: 1, Count: 3})); err != nil {
		t.Errorf("Rebuild of partition 1: %v", err)
	}
	if err := g.WaitFor(t.Context(), "nosuch", 1); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("WaitFor(nosuch) = %v, want ErrNotFound", err)
	}
}
