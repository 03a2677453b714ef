package runtime_test

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// lender is a store whose VisitStream lends each event's body from a
// buffer of its own: marked Stable, a fresh buffer per event that nobody
// writes again; not marked, one buffer reused for every event and
// scribbled over once fn returns, as a store reusing its iterator's memory
// would.
type lender struct {
	runtime.Store
	stable bool
	lent   [][]byte // the buffers lent, in order
}

func (l *lender) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	var buf []byte
	for rec, err := range l.ReadStream(ctx, stream, after) {
		if err != nil {
			return err
		}
		if l.stable {
			buf = append([]byte(nil), rec.Data...)
		} else {
			buf = append(buf[:0], rec.Data...)
		}
		l.lent = append(l.lent, buf)
		err := fn(&runtime.EventView{Version: rec.Version, Position: rec.Position, Name: rec.Name, Schema: rec.Schema, Data: buf, Stable: l.stable})
		if !l.stable {
			for i := range buf {
				buf[i] = 0xc1 // a reserved MessagePack code: never valid again
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// within reports whether s's bytes lie inside b.
func within(s string, b []byte) bool {
	if s == "" || len(b) == 0 {
		return false
	}
	p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&b[0]))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(b))
}

// TestLoadStableViews: Load decodes the strings of a view marked Stable
// from its Data itself (the generated StableEvent decoders), and copies
// those of any other view, so that a store reusing its buffer after the
// call changes nothing that Load returned.
func TestLoadStableViews(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	owner := strings.Repeat("owner-", 4)
	if _, err := account.NewAccountRepository(mem).Append(ctx, "a", runtime.NoStream,
		account.Opened{Owner: owner}, account.Deposited{Amount: 5, Reference: "ref"}, account.Deposited{Amount: 7, Reference: "ref"}); err != nil {
		t.Fatal(err)
	}
	for _, stable := range []bool{false, true} {
		l := &lender{Store: mem, stable: stable}
		got, v, err := account.NewAccountRepository(l, runtime.WithSnapshotEvery(0)).Load(ctx, "a")
		if err != nil || v != 3 || got.Owner != owner || got.Balance != 12 {
			t.Fatalf("stable %v: Load = %+v, %d, %v; want owner %q, balance 12 at version 3", stable, got, v, err, owner)
		}
		if len(l.lent) != 3 {
			t.Fatalf("stable %v: %d events lent, want 3", stable, len(l.lent))
		}
		if aliased := within(got.Owner, l.lent[0]); aliased != stable {
			t.Errorf("stable %v: Owner aliases the lent body: %v, want %v", stable, aliased, stable)
		}
	}
}
