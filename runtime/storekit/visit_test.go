package storekit_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// readOnly hides the memory store's StreamVisitor.
type readOnly struct{ runtime.Store }

// TestVisitStream: through a store's own StreamVisitor the views are the
// store's (memory's Stable); through ReadStream every view is Stable and
// its bytes, kept past the visit, never change through later appends,
// reads and Close; fn's error ends the visit and is returned.
func TestVisitStream(t *testing.T) {
	st := runtime.StreamID{Type: "T", ID: "v"}
	for _, hide := range []bool{false, true} {
		t.Run(fmt.Sprintf("readStreamOnly=%v", hide), func(t *testing.T) {
			ctx := t.Context()
			mem := memory.New()
			var s runtime.Store = mem
			if hide {
				s = readOnly{mem}
			}
			for i := range 50 {
				if _, err := mem.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: []runtime.EventData{
					{Name: "E", Schema: 2, Data: fmt.Appendf(nil, "body %d", i)},
				}}); err != nil {
					t.Fatal(err)
				}
			}
			var kept, want [][]byte
			err := storekit.VisitStream(ctx, s, st, 10, func(e *runtime.EventView) error {
				if !e.Stable {
					t.Errorf("view of version %d not Stable", e.Version)
				}
				if e.Name != "E" || e.Schema != 2 || e.Version != uint64(len(kept)+11) {
					t.Errorf("view %+v, want E schema 2 version %d", e, len(kept)+11)
				}
				kept, want = append(kept, e.Data), append(want, bytes.Clone(e.Data))
				return nil
			})
			if err != nil || len(kept) != 40 {
				t.Fatalf("visited %d events (%v), want 40", len(kept), err)
			}
			for range 5 {
				for range s.ReadStream(ctx, st, 0) {
				}
				if _, err := mem.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "X", Data: bytes.Repeat([]byte("x"), 300)}}}); err != nil {
					t.Fatal(err)
				}
			}
			_ = mem.Close()
			for i := range kept {
				if !bytes.Equal(kept[i], want[i]) || string(kept[i]) != fmt.Sprintf("body %d", i+10) {
					t.Errorf("kept view %d holds %q, was %q", i, kept[i], want[i])
				}
			}
			stop := errors.New("stop")
			calls := 0
			err = storekit.VisitStream(ctx, s, st, 0, func(*runtime.EventView) error { calls++; return stop })
			if !errors.Is(err, runtime.ErrClosed) {
				t.Errorf("visit of a closed store: %v, want ErrClosed", err)
			}
			mem2 := memory.New()
			defer mem2.Close()
			var s2 runtime.Store = mem2
			if hide {
				s2 = readOnly{mem2}
			}
			if _, err := mem2.Append(ctx, runtime.AppendRequest{Stream: st, Events: []runtime.EventData{{Name: "A"}, {Name: "B"}}}); err != nil {
				t.Fatal(err)
			}
			calls = 0
			err = storekit.VisitStream(ctx, s2, st, 0, func(*runtime.EventView) error { calls++; return stop })
			if err != stop || calls != 1 {
				t.Errorf("visit stopped by fn: %d calls, %v; want 1, fn's error", calls, err)
			}
		})
	}
}
