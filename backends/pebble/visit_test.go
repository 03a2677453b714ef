package pebble

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestVisitStreamCloseMidVisit closes the store from another goroutine
// while VisitStream is inside its callback: Close waits for the batch the
// callback is lending bytes from, and the visit then either completes or
// ends with ErrClosed, never reading a closed iterator (run with -race).
func TestVisitStreamCloseMidVisit(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	st := runtime.StreamID{Type: "T", ID: "close-mid-visit"}
	evs := make([]runtime.EventData, 100)
	for i := range evs {
		evs[i] = ev("e")
	}
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: evs}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	n := 0
	err := s.VisitStream(ctx, st, 0, func(e *runtime.EventView) error {
		n++
		if string(e.Data) != "e" || e.Version != uint64(n) {
			t.Errorf("event %d: version %d, data %q", n, e.Version, e.Data)
		}
		if n == 5 {
			go func() { closed <- s.Close() }()
		}
		return nil
	})
	if cerr := <-closed; cerr != nil {
		t.Fatalf("Close: %v", cerr)
	}
	switch {
	case err == nil && n == 100:
	case errors.Is(err, runtime.ErrClosed) && n >= visitBatch && n%visitBatch == 0:
	default:
		t.Fatalf("VisitStream with a Close after event 5: %d events, %v; want all 100, or whole batches then ErrClosed", n, err)
	}
}
