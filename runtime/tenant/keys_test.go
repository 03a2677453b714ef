package tenant_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

func TestKeysAreTenantScoped(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	acme, _ := tenant.Scope(store, "acme")
	globex, _ := tenant.Scope(store, "globex")
	st := runtime.StreamID{Type: "Member", ID: "m1"}
	keys := map[string]runtime.DataKey{}
	for _, v := range []*tenant.Store{acme, globex} {
		k, ok := runtime.KeysOf(v)
		if !ok || k != runtime.KeyStore(v) {
			t.Fatalf("KeysOf(%s view) = %v, %v; want the view itself", v.Name(), k, ok)
		}
		fresh, _ := runtime.NewDataKey()
		got, err := v.SubjectKey(ctx, "ada", st, fresh)
		if err != nil || got != fresh {
			t.Fatalf("%s: SubjectKey = %v, want the fresh key", v.Name(), err)
		}
		keys[v.Name()] = got
	}
	if keys["acme"] == keys["globex"] {
		t.Fatal("two tenants share a subject's key")
	}
	streams, found, err := acme.ForgetSubject(ctx, "ada")
	if err != nil || !found || len(streams) != 1 || streams[0] != st {
		t.Fatalf("ForgetSubject = %v, %v, %v; want the tenant's stream unscoped", streams, found, err)
	}
	if _, err := acme.LoadSubjectKey(ctx, "ada"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("acme's key after forgetting: %v", err)
	}
	if k, err := globex.LoadSubjectKey(ctx, "ada"); err != nil || k != keys["globex"] {
		t.Errorf("globex's key after acme forgot its ada: %v", err)
	}
	// The store underneath has only globex's, under a scoped subject.
	if _, err := store.LoadSubjectKey(ctx, "ada"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("the unscoped subject exists underneath: %v", err)
	}
	if _, found, _ := store.SubjectStreams(ctx, "@6:globex/ada"); !found {
		t.Error("globex's subject is not stored under its scoped id")
	}
}

// TestAllOpensEachTenantsRecords: a projection across tenants reads each
// tenant's sealed fields with that tenant's key, and one tenant forgetting
// its subject does not touch another's.
func TestAllOpensEachTenantsRecords(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	st := runtime.StreamID{Type: "Member", ID: "m1"}
	for _, name := range []string{"acme", "globex"} {
		v, _ := tenant.Scope(store, name)
		b := wire.AppendMapHeader(nil, 1)
		b, err := runtime.NewSealer(ctx, v, st).String(wire.AppendString(b, "Email"), "Email", "ada", name+"-ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{{Name: "Joined", Schema: 1, Data: b}}}); err != nil {
			t.Fatal(err)
		}
	}
	acme, _ := tenant.Scope(store, "acme")
	if _, err := lifecycle.ForgetSubject(ctx, acme, "ada"); err != nil {
		t.Fatal(err)
	}
	all := tenant.All(store)
	var got []string
	for rec, err := range all.ReadAll(ctx, 0) {
		if err == nil {
			rec, err = runtime.OpenRecordFrom(ctx, all, rec)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, b, _ := wire.ReadMapHeader(rec.Data)
		_, b, _ = wire.ReadString(b)
		email, _, err := wire.ReadString(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, email)
	}
	if len(got) != 2 || got[0] != runtime.ForgottenString || got[1] != "globex-ada@example.com" {
		t.Errorf("across tenants = %q; want acme's forgotten, globex's in the clear", got)
	}
}
