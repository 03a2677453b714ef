package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) runtime.Store { return memory.New() },
	})
}

// TestCloseDuringAppends closes the store while writers and waiters run:
// every call either succeeds or fails with ErrClosed, and appends that
// succeeded are exactly those before Close (positions 1..n, no gaps).
func TestCloseDuringAppends(t *testing.T) {
	s := memory.New()
	ctx := context.Background()
	const writers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var positions []uint64
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			st := runtime.StreamID{Type: "T", ID: fmt.Sprint(w)}
			for {
				res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: storetest.Events(2)})
				if err != nil {
					if !errors.Is(err, runtime.ErrClosed) {
						t.Errorf("writer %d: %v, want ErrClosed", w, err)
					}
					return
				}
				mu.Lock()
				positions = append(positions, res.FirstPosition, res.LastPosition)
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			var after uint64
			for {
				p, err := s.Wait(ctx, after)
				if err != nil {
					if !errors.Is(err, runtime.ErrClosed) {
						t.Errorf("waiter %d: %v, want ErrClosed", w, err)
					}
					return
				}
				after = p
			}
		}()
	}
	// Close once some appends are in.
	if _, err := s.Wait(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	slices.Sort(positions)
	for i, p := range positions {
		if p != uint64(i+1) {
			t.Fatalf("acknowledged positions have a gap at %d: %d", i+1, p)
		}
	}
}
