package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// testVisit checks runtime.StreamVisitor, for stores that implement it:
// a visit shows exactly what ReadStream yields, stops at fn's error, and
// fails like ReadStream on bad input, a done context and a closed store.
func (h *harness) testVisit(t *testing.T) {
	if _, ok := h.open(t).(runtime.StreamVisitor); !ok {
		t.Skip("the store does not implement runtime.StreamVisitor")
	}
	visitor := func(t *testing.T) (runtime.Store, runtime.StreamVisitor) {
		s := h.open(t)
		return s, s.(runtime.StreamVisitor)
	}
	// view is what a visit shows, its bytes copied out of the call.
	type view struct {
		version, position uint64
		name              string
		schema            uint32
		data              []byte
	}
	visit := func(v runtime.StreamVisitor, c context.Context, st runtime.StreamID, after uint64) ([]view, error) {
		var out []view
		err := v.VisitStream(c, st, after, func(e *runtime.EventView) error {
			out = append(out, view{e.Version, e.Position, string([]byte(e.Name)), e.Schema, bytes.Clone(e.Data)})
			return nil
		})
		return out, err
	}
	t.Run("SameAsReadStream", func(t *testing.T) {
		s, v := visitor(t)
		st, other := stream("T", "visit"), stream("T", "visit-other")
		// Appends of one and several events, another stream between them,
		// and events with metadata, an empty body and no metadata.
		mustAppend(t, s, st, runtime.NoStream, EventsWith("A", 3)...)
		mustAppend(t, s, other, runtime.NoStream, EventsWith("O", 2)...)
		mustAppend(t, s, st, 3, runtime.EventData{Name: "Empty", Schema: 7, Data: []byte{}})
		mustAppend(t, s, other, 2, EventsWith("P", 1)...)
		mustAppend(t, s, st, 4, EventsWith("B", 5)...)
		for _, after := range []uint64{0, 1, 3, 8, 9, 20} {
			recs := readStream(t, s, st, after)
			got, err := visit(v, ctx(t), st, after)
			if err != nil {
				t.Fatalf("VisitStream(after %d): %v", after, err)
			}
			if len(got) != len(recs) {
				t.Fatalf("VisitStream(after %d) showed %d events, ReadStream yields %d", after, len(got), len(recs))
			}
			for i, r := range recs {
				want := view{r.Version, r.Position, r.Name, r.Schema, r.Data}
				if g := got[i]; g.version != want.version || g.position != want.position || g.name != want.name ||
					g.schema != want.schema || !bytes.Equal(g.data, want.data) {
					t.Errorf("VisitStream(after %d) event %d = %+v, ReadStream yields %+v", after, i, g, want)
				}
			}
		}
		if got, err := visit(v, ctx(t), stream("T", "missing"), 0); err != nil || len(got) != 0 {
			t.Errorf("VisitStream of a missing stream: %d events, %v; want none, nil", len(got), err)
		}
	})
	t.Run("StableBytesKept", func(t *testing.T) {
		// A view marked Stable lends bytes that may be kept: they never
		// change through later appends, visits, a hard delete of their
		// stream, a truncation of the log and Close.
		s, v := visitor(t)
		st, other := stream("T", "visit-stable"), stream("T", "visit-stable-other")
		mustAppend(t, s, st, runtime.NoStream, EventsWith("S", 300)...)
		var kept, want [][]byte
		err := v.VisitStream(ctx(t), st, 0, func(e *runtime.EventView) error {
			if e.Stable {
				kept, want = append(kept, e.Data), append(want, bytes.Clone(e.Data))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(kept) == 0 {
			t.Skip("the store marks no view Stable")
		}
		disturb(t, s, st, other, func() {
			if err := v.VisitStream(ctx(t), other, 0, func(*runtime.EventView) error { return nil }); err != nil {
				t.Fatal(err)
			}
		})
		for i := range kept {
			if !bytes.Equal(kept[i], want[i]) {
				t.Fatalf("the Data of stable view %d changed after the visit: %q, was %q", i, kept[i], want[i])
			}
		}
	})
	t.Run("StopsAtCallbackError", func(t *testing.T) {
		s, v := visitor(t)
		st := stream("T", "visit-stop")
		mustAppend(t, s, st, runtime.NoStream, Events(100)...)
		stop := errors.New("stop")
		calls := 0
		err := v.VisitStream(ctx(t), st, 0, func(*runtime.EventView) error {
			calls++
			if calls == 40 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 40 {
			t.Errorf("VisitStream with a callback failing at call 40: %d calls, %v; want 40, the callback's error", calls, err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s, v := visitor(t)
		st := stream("T", "visit-errors")
		mustAppend(t, s, st, runtime.NoStream, Events(3)...)
		none := func(*runtime.EventView) error {
			t.Error("VisitStream called fn on a failing visit")
			return nil
		}
		wantErr(t, "VisitStream of an invalid stream", v.VisitStream(ctx(t), stream("", "x"), 0, none), runtime.ErrInvalid)
		done, cancel := context.WithCancel(ctx(t))
		cancel()
		wantErr(t, "VisitStream on a done context", v.VisitStream(done, st, 0, none), context.Canceled)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "VisitStream after Close", v.VisitStream(ctx(t), st, 0, none), runtime.ErrClosed)
	})
}
