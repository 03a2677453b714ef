package readmodel_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/examples/bank/readmodel"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// TestBalances runs the generated projection on the memory store over
// accounts of two owners and checks the balances by owner after catching
// up, after a rebuild, and when a second, independent model is built from
// the same log.
func TestBalances(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	accounts := account.NewAccountRepository(store)
	steps := []struct {
		id  string
		cmd account.AccountCommand
	}{
		{"a1", account.OpenAccount{Owner: "Ann"}},
		{"a2", account.OpenAccount{Owner: "Ann"}},
		{"b1", account.OpenAccount{Owner: "Ben"}},
		{"a1", account.Deposit{Amount: 500}},
		{"a2", account.Deposit{Amount: 250}},
		{"a2", account.Withdraw{Amount: 50}},
		{"b1", account.Deposit{Amount: 10}},
		{"b1", account.Withdraw{Amount: 10}},
		{"b1", account.CloseAccount{}},
	}
	for _, s := range steps {
		if _, err := accounts.Execute(ctx, s.id, s.cmd); err != nil {
			t.Fatalf("%s %T: %v", s.id, s.cmd, err)
		}
	}
	// An event of another stream type with a consumed wire name is not
	// decoded (its bytes are not an account event).
	if _, err := store.Append(ctx, runtime.AppendRequest{
		Stream: runtime.StreamID{Type: "other", ID: "x"},
		Events: []runtime.EventData{{Name: account.DepositedEventName, Schema: 1, Data: []byte{0xc1}}},
	}); err != nil {
		t.Fatal(err)
	}
	want := []readmodel.OwnerBalance{
		{Owner: "Ann", Balance: 700, Open: 2},
		{Owner: "Ben", Balance: 0, Closed: 1},
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b := &readmodel.Balances{}
	group := projection.NewGroup(store)
	if err := group.Add(b.Projection()); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- group.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("group: %v", err)
		}
	}()
	for i, step := range []string{"built", "rebuilt", "rebuilt again"} {
		if i > 0 {
			if err := group.Rebuild(ctx, readmodel.BalancesProjectionName); err != nil {
				t.Fatal(err)
			}
		}
		if err := group.WaitFor(ctx, readmodel.BalancesProjectionName, head); err != nil {
			t.Fatal(err)
		}
		if got := b.ByOwner(); !slices.Equal(got, want) {
			t.Errorf("%s: got %+v, want %+v", step, got, want)
		}
		if pos, _ := b.Position(ctx); pos != head-1 {
			// The last record (the other stream type) is skipped, so the
			// committed position is that of the last account event.
			t.Errorf("%s: position %d, want %d", step, pos, head-1)
		}
	}
}

// TestDuplicateDeliveryIgnored hands the same record to Handle twice: the
// position check applies it once.
func TestDuplicateDeliveryIgnored(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	accounts := account.NewAccountRepository(store)
	for _, c := range []account.AccountCommand{account.OpenAccount{Owner: "Ann"}, account.Deposit{Amount: 300}} {
		if _, err := accounts.Execute(ctx, "a", c); err != nil {
			t.Fatal(err)
		}
	}
	b := &readmodel.Balances{}
	p := b.Projection()
	for rec, err := range store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := p.Handle(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := b.ByOwner(), []readmodel.OwnerBalance{{Owner: "Ann", Balance: 300, Open: 1}}; !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
