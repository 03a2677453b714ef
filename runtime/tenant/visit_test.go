package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// noVisitor hides the store's StreamVisitor: ReadStream alone.
type noVisitor struct{ runtime.Store }

// unstable lends memory's views unmarked, as a store with reused buffers
// would, and counts its visits.
type unstable struct {
	*memory.Store
	visits int
}

func (u *unstable) VisitStream(ctx context.Context, st runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	u.visits++
	return u.Store.VisitStream(ctx, st, after, func(e *runtime.EventView) error {
		e.Stable = false
		return fn(e)
	})
}

// damaged is a store whose stream reads fail with a decode error naming
// the stored (scoped) stream, as a store's checksum failure does.
type damaged struct{ *memory.Store }

func (d damaged) err(st runtime.StreamID) error {
	return fmt.Errorf("store: %w", &runtime.DecodeError{Stream: st, Version: 1, What: "envelope", Err: errors.New("checksum mismatch")})
}

func (d damaged) ReadStream(_ context.Context, st runtime.StreamID, _ uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) { yield(runtime.Record{}, d.err(st)) }
}

func (d damaged) VisitStream(_ context.Context, st runtime.StreamID, _ uint64, _ func(*runtime.EventView) error) error {
	return d.err(st)
}

type base struct {
	name   string
	stable bool // the views a visit through the tenant shows are Stable
	open   func(t *testing.T) runtime.Store
}

func bases() []base {
	return []base{
		{"memory", true, func(*testing.T) runtime.Store { return memory.New() }},
		{"pebble", true, func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"no-visitor", true, func(*testing.T) runtime.Store { return noVisitor{memory.New()} }},
		{"unstable", false, func(*testing.T) runtime.Store { return &unstable{Store: memory.New()} }},
		{"instrumented", true, func(*testing.T) runtime.Store { return instrument.New(memory.New(), nil) }},
	}
}

// TestScopedLoadThroughVisit: a Load through a tenant's view reads through
// its VisitStream (the store's own, when it has one) to the state a Load
// through ReadStream finds, over every kind of store; the views pass
// Stable through unchanged; the same stream id in another tenant is
// another stream.
func TestScopedLoadThroughVisit(t *testing.T) {
	for _, b := range bases() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			store := b.open(t)
			defer store.Close()
			views := map[string]*tenant.Store{}
			for i, name := range []string{"acme", "globex"} {
				v, err := tenant.Scope(store, name)
				if err != nil {
					t.Fatal(err)
				}
				views[name] = v
				repo := account.NewAccountRepository(v, runtime.WithSnapshotEvery(0))
				if _, err := repo.Append(ctx, "a", runtime.NoStream, account.Opened{Owner: name}); err != nil {
					t.Fatal(err)
				}
				for j := range 10 * (i + 1) {
					if _, err := repo.Append(ctx, "a", uint64(j+1), account.Deposited{Amount: int64(j), Reference: name}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, name := range []string{"acme", "globex"} {
				v := views[name]
				if u, ok := store.(*unstable); ok {
					u.visits = 0
				}
				got, gotV, err := account.NewAccountRepository(v).Load(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				want, wantV, err := account.NewAccountRepository(noVisitor{v}).Load(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if gotV != wantV || !reflect.DeepEqual(got, want) || got.Owner != name || got.Deposits != 10*(i+1) {
					t.Errorf("%s: loaded %+v at %d through VisitStream, %+v at %d through ReadStream", name, got, gotV, want, wantV)
				}
				if u, ok := store.(*unstable); ok && u.visits != 1 {
					t.Errorf("%s: the Load made %d visits of the store's VisitStream, want 1", name, u.visits)
				}
				var shown []runtime.EventView
				err = v.VisitStream(ctx, runtime.StreamID{Type: account.AccountStreamType, ID: "a"}, 3, func(e *runtime.EventView) error {
					c := *e
					c.Name, c.Data = strings.Clone(e.Name), bytes.Clone(e.Data)
					shown = append(shown, c)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				var recs []runtime.Record
				for rec, err := range v.ReadStream(ctx, runtime.StreamID{Type: account.AccountStreamType, ID: "a"}, 3) {
					if err != nil {
						t.Fatal(err)
					}
					recs = append(recs, rec)
				}
				if len(shown) != len(recs) || len(recs) != 10*(i+1)+1-3 {
					t.Fatalf("%s: visit showed %d events, ReadStream yields %d", name, len(shown), len(recs))
				}
				for j, r := range recs {
					e := shown[j]
					if e.Version != r.Version || e.Position != r.Position || e.Name != r.Name || e.Schema != r.Schema || !bytes.Equal(e.Data, r.Data) || e.Stable != b.stable {
						t.Errorf("%s: view %d %+v, ReadStream %+v; Stable want %v", name, j, e, r, b.stable)
					}
				}
			}
		})
	}
}

// TestScopedVisitIsolation: no stream a tenant names reaches another
// tenant's events, nor the unscoped events of the store underneath: not
// the other tenant's stream id, not a type spelt as the other tenant's
// stored type, not the stored type of its own.
func TestScopedVisitIsolation(t *testing.T) {
	for _, b := range bases() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			store := b.open(t)
			defer store.Close()
			acme, err := tenant.Scope(store, "acme")
			if err != nil {
				t.Fatal(err)
			}
			globex, err := tenant.Scope(store, "globex")
			if err != nil {
				t.Fatal(err)
			}
			secret := runtime.StreamID{Type: "acct", ID: "secret"}
			if _, err := globex.Append(ctx, runtime.AppendRequest{Stream: secret, Events: []runtime.EventData{{Name: "Secret", Data: []byte("globex's")}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Append(ctx, runtime.AppendRequest{Stream: secret, Events: []runtime.EventData{{Name: "Unscoped", Data: []byte("operator's")}}}); err != nil {
				t.Fatal(err)
			}
			globexType := scoped(t, "globex", "acct")
			for _, st := range []runtime.StreamID{
				secret,
				{Type: globexType, ID: "secret"},
				{Type: scoped(t, "acme", "acct"), ID: "secret"},
				{Type: "/acct", ID: "secret"},
			} {
				err := acme.VisitStream(ctx, st, 0, func(e *runtime.EventView) error {
					t.Errorf("acme's visit of %s showed %s %q", st, e.Name, e.Data)
					return nil
				})
				if err != nil && !errors.Is(err, runtime.ErrInvalid) && !errors.Is(err, runtime.ErrTooLarge) {
					t.Errorf("acme's visit of %s: %v", st, err)
				}
			}
			n := 0
			if err := globex.VisitStream(ctx, secret, 0, func(e *runtime.EventView) error {
				n++
				if e.Name != "Secret" {
					t.Errorf("globex's visit of its stream showed %s", e.Name)
				}
				return nil
			}); err != nil || n != 1 {
				t.Errorf("globex's visit of its own stream: %d events, %v; want 1", n, err)
			}
		})
	}
}

// TestScopedVisitErrors: a visit fails as the tenant's ReadStream does,
// with the same error naming the tenant's stream as the tenant names it,
// and returns fn's error unchanged.
func TestScopedVisitErrors(t *testing.T) {
	st := runtime.StreamID{Type: "acct", ID: "1"}
	cases := []struct {
		name   string
		store  func() runtime.Store
		stream runtime.StreamID
		close  bool // the view is closed
		done   bool // the context is done
		want   error
	}{
		{name: "invalid", store: func() runtime.Store { return memory.New() }, stream: runtime.StreamID{ID: "1"}, want: runtime.ErrInvalid},
		{name: "type too long for the tenant", store: func() runtime.Store { return memory.New() },
			stream: runtime.StreamID{Type: strings.Repeat("t", runtime.MaxTypeLength-3), ID: "1"}, want: runtime.ErrTooLarge},
		{name: "closed view", store: func() runtime.Store { return memory.New() }, stream: st, close: true, want: runtime.ErrClosed},
		{name: "done context", store: func() runtime.Store { return memory.New() }, stream: st, done: true, want: context.Canceled},
		{name: "done context without visitor", store: func() runtime.Store { return noVisitor{memory.New()} }, stream: st, done: true, want: context.Canceled},
		{name: "damaged", store: func() runtime.Store { return damaged{memory.New()} }, stream: st, want: runtime.ErrCorrupt},
		{name: "damaged without visitor", store: func() runtime.Store { return noVisitor{damaged{memory.New()}} }, stream: st, want: runtime.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := c.store()
			defer store.Close()
			v, err := tenant.Scope(store, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if c.close {
				_ = v.Close()
			}
			ctx := t.Context()
			if c.done {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			verr := v.VisitStream(ctx, c.stream, 0, func(*runtime.EventView) error {
				t.Error("fn called on a failing visit")
				return nil
			})
			var rerr error
			for _, err := range v.ReadStream(ctx, c.stream, 0) {
				rerr = err
				break
			}
			if !errors.Is(verr, c.want) || fmt.Sprint(verr) != fmt.Sprint(rerr) {
				t.Errorf("VisitStream: %v\nReadStream: %v\nwant both %v", verr, rerr, c.want)
			}
			var de *runtime.DecodeError
			if errors.As(verr, &de) && de.Stream != c.stream {
				t.Errorf("the decode error names %s, want the tenant's %s", de.Stream, c.stream)
			}
		})
	}
	t.Run("fn's error", func(t *testing.T) {
		for _, b := range bases() {
			store := b.open(t)
			v, err := tenant.Scope(store, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Append(t.Context(), runtime.AppendRequest{Stream: st, Events: []runtime.EventData{{Name: "A"}, {Name: "B"}}}); err != nil {
				t.Fatal(err)
			}
			// A DeletedError naming a stored stream would be rewritten
			// were it the store's: fn's passes through untouched.
			stop := &runtime.DeletedError{Tombstone: runtime.Tombstone{Stream: runtime.StreamID{Type: scoped(t, "acme", "acct"), ID: "1"}}}
			calls := 0
			err = v.VisitStream(t.Context(), st, 0, func(*runtime.EventView) error { calls++; return stop })
			if err != error(stop) || calls != 1 {
				t.Errorf("%s: %d calls ending with %v; want 1, fn's error itself", b.name, calls, err)
			}
			_ = store.Close()
		}
	})
}
