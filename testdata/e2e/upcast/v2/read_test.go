package bank

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestReadV2 reads what TestWriteV1 stored, with the version 2 code.
func TestReadV2(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.Open(os.Getenv("CQRS_E2E_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The version 1 snapshot is still there, under the old state schema.
	old, _ := os.ReadFile(os.Getenv("CQRS_E2E_STORE") + ".schema")
	snap, err := s.LoadSnapshot(ctx, runtime.StreamID{Type: AccountStreamType, ID: "a1"})
	if err != nil || snap.Schema != string(old) || snap.Schema == AccountStateSchema {
		t.Fatalf("want the v1 snapshot (schema %q, current %q): %+v %v", old, AccountStateSchema, snap, err)
	}

	var reported []error
	repo := NewAccountRepository(s, runtime.WithErrorHandler(func(err error) { reported = append(reported, err) }))
	a, v, err := repo.Load(ctx, "a1")
	if err != nil || v != 5 {
		t.Fatalf("load: %d %v", v, err)
	}
	// Rebuilt from all five events, never from the v1 snapshot.
	want := Account{Cents: 1200, Currency: "EUR", Notes: []string{"first/v1", "second/v1"}, Events: 5}
	if a.Cents != want.Cents || a.Currency != want.Currency || !slices.Equal(a.Notes, want.Notes) || a.Events != want.Events {
		t.Fatalf("state %+v, want %+v", *a, want)
	}
	if len(reported) != 0 {
		t.Fatalf("errors reported: %v", reported)
	}

	// Events yields current types only, with the stored name and schema.
	var got []string
	for env, err := range repo.Events(ctx, "a1", 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch e := env.Event.(type) {
		case Opened:
			got = append(got, "opened:"+e.Owner)
		case Deposited:
			got = append(got, "deposited:"+e.Currency)
			if env.Name != DepositedEventName || env.Schema != 1 {
				t.Errorf("deposited stored as %q@%d", env.Name, env.Schema)
			}
		case Annotated:
			got = append(got, "annotated:"+e.Text)
			if env.Name != "bank.account.noted" || env.Schema != 1 {
				t.Errorf("annotated stored as %q@%d", env.Name, env.Schema)
			}
		default:
			t.Fatalf("unexpected %T", e)
		}
	}
	if w := []string{"opened:ann", "deposited:EUR", "annotated:first", "deposited:EUR", "annotated:second"}; !slices.Equal(got, w) {
		t.Fatalf("events %v, want %v", got, w)
	}

	// The event table, which projections and sagas decode through, knows
	// the former name.
	if !slices.Contains(AccountEvents().Names(), "bank.account.noted") {
		t.Fatalf("AccountEvents().Names() = %v", AccountEvents().Names())
	}

	// New events are written at version 2 and read back as such; the next
	// snapshot is saved under the new schema.
	if v, err = repo.Append(ctx, "a1", 5, Deposited{Cents: 1, Currency: "USD"}); err != nil || v != 6 {
		t.Fatalf("append v2: %d %v", v, err)
	}
	for env, err := range repo.Events(ctx, "a1", 5) {
		if err != nil || env.Schema != DepositedSchemaVersion || env.Event != (Deposited{Cents: 1, Currency: "USD"}) {
			t.Fatalf("v2 event: %+v %v", env, err)
		}
	}
	snap, err = s.LoadSnapshot(ctx, runtime.StreamID{Type: AccountStreamType, ID: "a1"})
	if err != nil || snap.Schema != AccountStateSchema || snap.Version != 6 {
		t.Fatalf("snapshot after v2 append: %+v %v", snap, err)
	}
	a, _, err = repo.Load(ctx, "a1")
	if err != nil || a.Cents != 1201 || a.Events != 6 {
		t.Fatalf("load through the v2 snapshot: %+v %v", a, err)
	}
}
