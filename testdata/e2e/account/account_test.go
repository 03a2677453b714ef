package account

// Behaviour test of the generated code for testdata/golden/account, run by
// generate_test.go's TestE2E, outside this repository, on the memory store.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestBehaviour(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	repo := NewAccountRepository(store)

	// A missing aggregate is the zero state at version 0.
	state, v, err := repo.Load(ctx, "a1")
	if err != nil || v != 0 || state == nil || state.Open || state.Balance != 0 {
		t.Fatalf("Load missing: %+v %d %v", state, v, err)
	}

	// Handle errors are returned as is and append nothing.
	if _, err := repo.Execute(ctx, "a1", Deposit{Amount: 5}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute on a closed account: %v, want ErrClosed", err)
	}
	if _, v, _ := repo.Load(ctx, "a1"); v != 0 {
		t.Fatalf("rejected command appended: version %d", v)
	}

	if v, err := repo.Execute(ctx, "a1", Open{Owner: "ann"}); err != nil || v != 1 {
		t.Fatalf("Execute Open: %d %v", v, err)
	}
	if v, err := repo.Execute(ctx, "a1", Deposit{Amount: 10}); err != nil || v != 2 {
		t.Fatalf("Execute Deposit: %d %v", v, err)
	}

	// Append with the version seen; a stale one is a typed conflict.
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if v, err := repo.Append(ctx, "a1", 2, Deposited{Amount: 7, At: at}, Withdrawn{Amount: 2}); err != nil || v != 4 {
		t.Fatalf("Append: %d %v", v, err)
	}
	_, err = repo.Append(ctx, "a1", 2, Withdrawn{Amount: 1})
	var conflict *runtime.ConflictError
	if !errors.Is(err, runtime.ErrConflict) || !errors.As(err, &conflict) || conflict.Actual != 4 || conflict.Expected != 2 {
		t.Fatalf("stale Append: %v (%+v)", err, conflict)
	}

	state, v, err = repo.Load(ctx, "a1")
	if err != nil || v != 4 || state.Balance != 15 || state.Owner != "ann" || len(state.History) != 2 {
		t.Fatalf("Load: %+v %d %v", state, v, err)
	}
	if !state.History[1].At.Equal(at) {
		t.Fatalf("time did not round-trip: %v, want %v", state.History[1].At, at)
	}

	// Events travel as values, in version order, with envelopes.
	var names []string
	var last uint64
	for env, err := range repo.Events(ctx, "a1", 1) {
		if err != nil {
			t.Fatal(err)
		}
		if env.ID != "a1" || env.Version != last+2 && last == 0 || env.Position == 0 {
			t.Fatalf("envelope %+v", env)
		}
		last = env.Version
		switch e := env.Event.(type) {
		case Deposited:
			names = append(names, "Deposited")
			if env.Name != DepositedEventName || env.Schema != DepositedSchemaVersion {
				t.Fatalf("Deposited stored as %q v%d", env.Name, env.Schema)
			}
		case Withdrawn:
			names = append(names, "Withdrawn")
			if e.Amount != 2 {
				t.Fatalf("Withdrawn %+v", e)
			}
		default:
			t.Fatalf("unexpected event %T", env.Event)
		}
	}
	if want := []string{"Deposited", "Deposited", "Withdrawn"}; len(names) != 3 || names[0] != want[0] || names[2] != want[2] || last != 4 {
		t.Fatalf("Events after 1: %v (last %d)", names, last)
	}

	// snapshot=3: crossing version 3 saved a snapshot with the state's schema.
	snap, err := store.LoadSnapshot(ctx, runtime.StreamID{Type: AccountStreamType, ID: "a1"})
	if err != nil || snap.Schema != AccountStateSchema || snap.Version < 3 {
		t.Fatalf("snapshot: %+v %v", snap, err)
	}
	fresh := NewAccountRepository(store)
	if s2, v2, err := fresh.Load(ctx, "a1"); err != nil || v2 != 4 || s2.Balance != 15 || len(s2.History) != 2 {
		t.Fatalf("Load through snapshot: %+v %d %v", s2, v2, err)
	}
	// A snapshot of another state shape is ignored: events rebuild it.
	if err := store.SaveSnapshot(ctx, runtime.Snapshot{Stream: snap.Stream, Version: 4, Schema: "other", Data: []byte{0xc1}}); err != nil {
		t.Fatal(err)
	}
	if s3, v3, err := fresh.Load(ctx, "a1"); err != nil || v3 != 4 || s3.Balance != 15 {
		t.Fatalf("Load ignoring a foreign snapshot: %+v %d %v", s3, v3, err)
	}

	// Idempotency: a repeated key returns the first result, once.
	v1, err := repo.Execute(ctx, "a1", Deposit{Amount: 100}, runtime.IdempotencyKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := NewAccountRepository(store).Execute(ctx, "a1", Deposit{Amount: 100}, runtime.IdempotencyKey("k1"))
	if err != nil || v2 != v1 {
		t.Fatalf("repeated key: %d %v, want %d", v2, err, v1)
	}
	if s, _, _ := repo.Load(ctx, "a1"); s.Balance != 115 {
		t.Fatalf("balance %d after an idempotent repeat, want 115", s.Balance)
	}

	// Many goroutines executing on one aggregate all succeed.
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := repo.Execute(ctx, "a1", Deposit{Amount: 1}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s, _, _ := repo.Load(ctx, "a1"); s.Balance != 115+n {
		t.Fatalf("balance %d after %d concurrent deposits, want %d", s.Balance, n, 115+n)
	}

	// The sealed interfaces accept values of the package's types only.
	var _ AccountEvent = Opened{}
	var _ AccountCommand = Deposit{}
}

// TestPointers: a pointer to an event or command satisfies the sealed
// interfaces (no interface can refuse it), so the generated code takes a
// non-nil one as its value everywhere it can enter and refuses a nil one;
// it is never silently ignored.
func TestPointers(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	repo := NewAccountRepository(store)

	var a Account
	a.Apply(&Opened{Owner: "ann"})
	if !a.Open || a.Owner != "ann" {
		t.Fatalf("Apply(&Opened{…}) did nothing: %+v", a)
	}
	if events, err := a.Decide(&Deposit{Amount: 3}); err != nil || len(events) != 1 {
		t.Fatalf("Decide(&Deposit{…}) = %v, %v", events, err)
	}
	if _, err := a.Decide((*Deposit)(nil)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Decide of a nil pointer: %v, want ErrInvalid", err)
	}

	if _, err := repo.Append(ctx, "p", runtime.NoStream, &Opened{Owner: "bob"}, &Deposited{Amount: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Append(ctx, "p", runtime.AnyVersion, (*Withdrawn)(nil)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Append of a nil pointer: %v, want ErrInvalid", err)
	}
	if _, err := repo.Execute(ctx, "p", &Deposit{Amount: 6}); err != nil {
		t.Fatal(err)
	}
	state, v, err := repo.Load(ctx, "p")
	if err != nil || v != 3 || state.Owner != "bob" || state.Balance != 10 {
		t.Fatalf("Load after pointers: %+v %d %v", state, v, err)
	}
	for env, err := range repo.Events(ctx, "p", 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch env.Event.(type) {
		case Opened, Deposited:
		default:
			t.Fatalf("stored event decodes as %T; events travel as values", env.Event)
		}
	}
}

// pkgRepo is built while the package's variables are initialised, before
// any init func: the generated tables must already be usable.
var pkgRepo = NewAccountRepository(memory.New())

func TestTablesAtPackageInit(t *testing.T) {
	ctx := context.Background()
	if _, err := pkgRepo.Append(ctx, "b", runtime.NoStream, Opened{Owner: "cy"}, Batch{Deposits: []Deposited{{Amount: 2}, {Amount: 3}}}); err != nil {
		t.Fatal(err)
	}
	state, v, err := pkgRepo.Load(ctx, "b")
	if err != nil || v != 2 || state.Balance != 5 {
		t.Fatalf("Load: %+v %d %v", state, v, err)
	}
}
