package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// scoped is the stored form of name in tenant t, as the tenant's view writes
// it: found through the store underneath.
func scoped(t *testing.T, tn, typ string) string {
	t.Helper()
	s := memory.New()
	defer s.Close()
	view, err := tenant.Scope(s, tn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := view.Append(t.Context(), runtime.AppendRequest{
		Stream: runtime.StreamID{Type: typ, ID: "1"}, Expected: runtime.AnyVersion,
		Events: []runtime.EventData{{Name: "E"}},
	}); err != nil {
		t.Fatal(err)
	}
	for rec, err := range s.ReadAll(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		return rec.Stream.Type
	}
	t.Fatal("nothing stored")
	return ""
}

func TestSplitInvertsScoping(t *testing.T) {
	cases := []struct{ tenant, name string }{
		{"a", "b/c"}, {"a/b", "c"}, {"\x00", "x"}, {"1:a", "x"}, {"@1:a/", "x"}, {"é", ":"},
	}
	seen := map[string]int{}
	for i, c := range cases {
		stored := scoped(t, c.tenant, c.name)
		if j, dup := seen[stored]; dup {
			t.Errorf("%+v and %+v are both stored as %q", cases[j], c, stored)
		}
		seen[stored] = i
		tn, name, ok := tenant.Split(stored)
		if !ok || tn != c.tenant || name != c.name {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q", stored, tn, name, ok, c.tenant, c.name)
		}
	}
	for _, s := range []string{"", "acct", "@", "@0:/x", "@01:a/x", "@2:a/x", "@1:ab", "@129:" + string(make([]byte, 129)) + "/x", "@+1:a/x"} {
		if tn, name, ok := tenant.Split(s); ok {
			t.Errorf("Split(%q) = %q, %q, true; want not scoped", s, tn, name)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("a", "b/c")
	f.Add("a/b", "c")
	f.Add("\x00", "")
	f.Fuzz(func(t *testing.T, tn, name string) {
		if tenant.ValidateName(tn) != nil {
			return
		}
		stored := "@" + fmt.Sprint(len(tn)) + ":" + tn + "/" + name
		got, rest, ok := tenant.Split(stored)
		if !ok || got != tn || rest != name {
			t.Fatalf("Split(%q) = %q, %q, %v", stored, got, rest, ok)
		}
	})
}

// sums is a read model of the amounts deposited per tenant and account.
type sums struct {
	mu  sync.Mutex
	sum map[string]int
}

func (s *sums) projection(name string) projection.Projection {
	return projection.Projection{
		Name:   name,
		Events: []string{"Deposited"},
		Handle: func(_ context.Context, rec runtime.Record) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.sum[rec.Metadata[tenant.MetadataKey]+"/"+rec.Stream.Type+"/"+rec.Stream.ID] += len(rec.Data)
			return nil
		},
	}
}

func (s *sums) get(k string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sum[k]
}

// TestProjections runs one projection per tenant and one across tenants
// over the same store, with read-your-writes through WaitFor.
func TestProjections(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store := memory.New()
	defer store.Close()
	views := map[string]*tenant.Store{}
	for _, name := range []string{"acme", "globex"} {
		v, err := tenant.Scope(store, name)
		if err != nil {
			t.Fatal(err)
		}
		views[name] = v
	}
	deposit := func(v runtime.Store, id string, n int) uint64 {
		res, err := v.Append(ctx, runtime.AppendRequest{
			Stream: runtime.StreamID{Type: "account", ID: id}, Expected: runtime.AnyVersion,
			Events: []runtime.EventData{{Name: "Deposited", Data: make([]byte, n)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.LastPosition
	}

	acme, all := &sums{sum: map[string]int{}}, &sums{sum: map[string]int{}}
	acmeGroup := projection.NewGroup(views["acme"])
	if err := acmeGroup.Add(acme.projection("sums")); err != nil {
		t.Fatal(err)
	}
	allGroup := projection.NewGroup(tenant.All(store))
	if err := allGroup.Add(all.projection("sums")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, g := range []*projection.Group{acmeGroup, allGroup} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	deposit(views["acme"], "1", 5)
	deposit(views["globex"], "1", 7)
	last := deposit(views["acme"], "1", 3)
	lastGlobex := deposit(views["globex"], "2", 1) // after acme's last: acme's WaitFor must not need it
	if err := acmeGroup.WaitFor(ctx, "sums", last); err != nil {
		t.Fatal(err)
	}
	if err := allGroup.WaitFor(ctx, "sums", lastGlobex); err != nil {
		t.Fatal(err)
	}
	if got := acme.get("/account/1"); got != 8 {
		t.Errorf("acme's projection: account 1 = %d, want 8", got)
	}
	if len(acme.sum) != 1 {
		t.Errorf("acme's projection saw %v, want acme's account only", acme.sum)
	}
	for k, want := range map[string]int{"acme/account/1": 8, "globex/account/1": 7, "globex/account/2": 1} {
		if got := all.get(k); got != want {
			t.Errorf("cross-tenant projection: %s = %d, want %d", k, got, want)
		}
	}
	cancel()
	wg.Wait()
	// The two groups checkpoint under the same name without meeting: the
	// tenant's is scoped, the cross-tenant one is the store's own.
	for name, want := range map[string]uint64{"acme": last, "store": lastGlobex} {
		s := runtime.Store(store)
		if name == "acme" {
			s = views["acme"]
		}
		if got, err := s.LoadCheckpoint(t.Context(), "sums"); err != nil || got < want {
			t.Errorf("%s: LoadCheckpoint(sums) = %d, %v; want at least %d", name, got, err, want)
		}
	}
	if _, err := views["globex"].LoadCheckpoint(t.Context(), "sums"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("globex: LoadCheckpoint(sums) = %v, want ErrNotFound: no projection ran in globex", err)
	}
}

// Each tenant's repositories and projections run on the tenant's view; a
// read model across every tenant runs on All.
func ExampleScope() {
	ctx := context.Background()
	store := memory.New() // or pebble.Open, postgres.Open: one store for every tenant
	defer store.Close()
	acme, _ := tenant.Scope(store, "acme")
	globex, _ := tenant.Scope(store, "globex")
	account := runtime.StreamID{Type: "account", ID: "1"}
	for _, view := range []*tenant.Store{acme, globex} {
		_, err := view.Append(ctx, runtime.AppendRequest{
			Stream: account, Expected: runtime.NoStream, // the same id, a stream per tenant
			Events: []runtime.EventData{{Name: "Opened", Data: []byte(view.Name())}},
		})
		fmt.Println(view.Name(), err)
	}
	for rec, err := range tenant.All(store).ReadAll(ctx, 0) {
		fmt.Println(rec.Metadata[tenant.MetadataKey], rec.Stream, string(rec.Data), err)
	}
	// Output:
	// acme <nil>
	// globex <nil>
	// acme account/"1" acme <nil>
	// globex account/"1" globex <nil>
}
