package bank

import (
	"context"
	"os"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestWriteV1 stores events with the version 1 code; snapshots are saved
// every 2 events.
func TestWriteV1(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.Open(os.Getenv("CQRS_E2E_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	repo := NewAccountRepository(s)
	v, err := repo.Append(ctx, "a1", runtime.NoStream, Opened{Owner: "ann"}, Deposited{Amount: 5}, Noted{Note: "first"})
	if err != nil || v != 3 {
		t.Fatalf("append: %d %v", v, err)
	}
	if v, err = repo.Append(ctx, "a1", 3, Deposited{Amount: 7}, Noted{Note: "second"}); err != nil || v != 5 {
		t.Fatalf("append: %d %v", v, err)
	}
	a, v, err := repo.Load(ctx, "a1")
	if err != nil || v != 5 || a.Balance != 12 || a.Notes != 2 {
		t.Fatalf("v1 load: %+v %d %v", a, v, err)
	}
	snap, err := s.LoadSnapshot(ctx, runtime.StreamID{Type: AccountStreamType, ID: "a1"})
	if err != nil || snap.Schema != AccountStateSchema || snap.Version < 2 {
		t.Fatalf("no v1 snapshot: %+v %v", snap, err)
	}
	os.WriteFile(os.Getenv("CQRS_E2E_STORE")+".schema", []byte(snap.Schema), 0o644)
}
