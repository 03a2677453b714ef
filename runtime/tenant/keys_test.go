package tenant_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
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
