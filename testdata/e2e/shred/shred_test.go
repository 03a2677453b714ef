package shred

// Behaviour test of the generated code for testdata/golden/shred, run by
// shred_e2e_test.go's TestShredE2E outside this repository, on the memory
// and Pebble stores: fields tagged pii are sealed on append, read back in
// the clear by loads, event reads, upcasts and projections, and read as
// runtime.ForgottenString everywhere once the subject is forgotten.

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

const (
	email = "ada-lovelace-7f3a9c@example.com"
	name  = "Augusta Ada King"
)

func TestShred(t *testing.T) {
	stores := map[string]func(t *testing.T) runtime.Store{
		"memory": func(t *testing.T) runtime.Store { return memory.New() },
		"pebble": func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for storeName, open := range stores {
		t.Run(storeName, func(t *testing.T) {
			store := open(t)
			defer store.Close()
			behaviour(t, store)
		})
	}
}

func behaviour(t *testing.T, store runtime.Store) {
	ctx := context.Background()
	repo := NewMemberRepository(store)
	if _, err := repo.Append(ctx, "m1", runtime.NoStream, Joined{User: "u1", Email: email, Name: name, Plan: "gold"}); err != nil {
		t.Fatal(err)
	}
	// An event stored at schema version 1 (sealed by the old form's
	// generated codec), upcast on read.
	m2 := runtime.StreamID{Type: MemberStreamType, ID: "m2"}
	keys, _ := runtime.KeysOf(store)
	v1, err := cqrsMarshalJoinedV1(&JoinedV1{User: "u1", Email: email, Name: name}, runtime.NewSealer(ctx, keys, m2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, runtime.AppendRequest{Stream: m2, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: JoinedEventName, Schema: 1, Data: v1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Append(ctx, "m3", runtime.NoStream, Joined{User: "u2", Email: "grace@example.com", Name: "Grace", Plan: "gold"}); err != nil {
		t.Fatal(err)
	}
	// A second event crosses snapshot=2: the snapshot holds the state,
	// sealed.
	if _, err := repo.Append(ctx, "m1", 1, PlanChanged{Plan: "platinum"}); err != nil {
		t.Fatal(err)
	}
	for rec, err := range store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(rec.Data, []byte(email)) || bytes.Contains(rec.Data, []byte(name)) {
			t.Fatalf("stored event %s v%d holds personal data in the clear", rec.Stream, rec.Version)
		}
	}
	snap, err := store.LoadSnapshot(ctx, runtime.StreamID{Type: MemberStreamType, ID: "m1"})
	if err != nil || bytes.Contains(snap.Data, []byte(email)) {
		t.Fatalf("snapshot: %v, or it holds the e-mail in the clear", err)
	}

	want := func(id string, m Member) {
		t.Helper()
		got, _, err := repo.Load(ctx, id)
		if err != nil || *got != m {
			t.Errorf("Load(%s) = %+v, %v; want %+v", id, got, err, m)
		}
	}
	want("m1", Member{Email: email, Name: name, Plan: "platinum"})
	want("m2", Member{Email: email, Name: name, Plan: "basic"})
	seen := project(t, store, "before")
	if seen[0] != email || seen[1] != email {
		t.Errorf("projection saw %q before forgetting", seen)
	}

	res, err := lifecycle.ForgetSubject(ctx, store, "u1")
	if err != nil || len(res.Streams) != 2 || res.Snapshots != 1 {
		t.Fatalf("ForgetSubject = %+v, %v", res, err)
	}
	f := runtime.ForgottenString
	want("m1", Member{Email: f, Name: Name(f), Plan: "platinum"})
	want("m2", Member{Email: f, Name: Name(f), Plan: "basic"})
	want("m3", Member{Email: "grace@example.com", Name: "Grace", Plan: "gold"})
	for env, err := range repo.Events(ctx, "m1", 0) {
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := env.Event.(Joined); ok && (j.Email != f || j.Name != Name(f) || j.User != "u1") {
			t.Errorf("Events after forgetting: %+v", j)
		}
	}
	seen = project(t, store, "after")
	if seen[0] != f || seen[1] != f || seen[2] != "grace@example.com" {
		t.Errorf("projection saw %q after forgetting", seen)
	}

	// Only a repository over a store with keys can encode such an event.
	if _, err := MemberEvents().Encode(Joined{User: "u1", Email: email}); !errors.Is(err, runtime.ErrNoKeyStore) {
		t.Errorf("Encode without a sealer: %v, want ErrNoKeyStore", err)
	}
}

// project runs a projection of Joined events over the whole log and
// returns the e-mails of the three it sees (m1, m2 upcast, m3).
func project(t *testing.T, store runtime.Store, name string) []string {
	t.Helper()
	seen := make(chan string, 3)
	h := projection.NewHandlers(projection.On(MemberEvents(), func(_ context.Context, e runtime.Envelope[Joined]) error {
		seen <- e.Event.Email
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- projection.Run(ctx, store, projection.Projection{Name: name, Events: h.Names(), Handle: h.Handle})
	}()
	var out []string
	for range 3 {
		out = append(out, <-seen)
	}
	cancel()
	<-done
	return out
}
