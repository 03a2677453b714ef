package readmodel_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"example.com/e2e/projection/audit"
	"example.com/e2e/projection/bank"
	"example.com/e2e/projection/readmodel"
	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

func seed(t *testing.T, store runtime.Store) uint64 {
	t.Helper()
	ctx := context.Background()
	accounts := bank.NewAccountRepository(store)
	logs := audit.NewLogRepository(store)
	must := func(_ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(accounts.Append(ctx, "a", runtime.NoStream, bank.Opened{Owner: "alice"}, bank.Deposited{Amount: 100}))
	must(logs.Append(ctx, "l", runtime.NoStream, audit.Opened{By: "ops"}))
	must(accounts.Append(ctx, "b", runtime.NoStream, bank.Opened{Owner: "bob"}, bank.Deposited{Amount: 5}))
	must(accounts.Append(ctx, "a", 2, bank.Withdrawn{Amount: 30}))
	// A record of another stream type under a consumed wire name, with
	// bytes that are no event: it must be skipped without decoding.
	if _, err := store.Append(ctx, runtime.AppendRequest{
		Stream: runtime.StreamID{Type: "other", ID: "x"},
		Events: []runtime.EventData{{Name: bank.DepositedEventName, Schema: 1, Data: []byte{0xc1}}},
	}); err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

var wantBalances = map[string]int64{"alice": 70, "bob": 5}

func TestGeneratedAPI(t *testing.T) {
	b := &readmodel.Balances{}
	p := b.Projection()
	if p.Name != readmodel.BalancesProjectionName || readmodel.BalancesProjectionName != "e2e:balances" {
		t.Errorf("name %q", p.Name)
	}
	if want := []string{"Opened", "bank.deposited", "bank.withdrawn"}; !slices.Equal(p.Events, want) {
		t.Errorf("events %q, want %q", p.Events, want)
	}
	if p.Reset == nil || p.Position == nil {
		t.Error("Reset or Position not filled")
	}
	d := (&bank.Deposits{}).Projection()
	if d.Name != "Deposits" || d.Reset == nil || d.Position != nil || !slices.Equal(d.Events, []string{"bank.deposited"}) {
		t.Errorf("Deposits projection %+v", d)
	}
	// A handler built on the aggregate's table gets the concrete event and
	// decodes only its own records.
	var got []bank.Deposited
	h := projection.NewHandlers(projection.On(bank.AccountEvents(), func(_ context.Context, e runtime.Envelope[bank.Deposited]) error {
		got = append(got, e.Event)
		return nil
	}))
	rec := func(name string, schema uint32, data []byte) runtime.Record {
		return runtime.Record{Stream: runtime.StreamID{Type: bank.AccountStreamType, ID: "a"}, Name: name, Schema: schema, Data: data}
	}
	if err := h.Handle(context.Background(), rec("bank.withdrawn", 1, []byte{0xc1})); err != nil || len(got) != 0 {
		t.Errorf("handler of Deposited on another name: %v, %v; want it skipped without decoding", got, err)
	}
	var de *runtime.DecodeError
	if err := h.Handle(context.Background(), rec("bank.deposited", 1, []byte{0xc1})); !errors.As(err, &de) || len(got) != 0 {
		t.Errorf("handler of Deposited on bad bytes: %v, want a *runtime.DecodeError", err)
	}
	if err := h.Handle(context.Background(), rec("bank.deposited", 9, nil)); !errors.As(err, &de) {
		t.Errorf("handler of Deposited on an unknown schema: %v, want a *runtime.DecodeError", err)
	}
	if err := h.Handle(context.Background(), rec("bank.deposited", 1, []byte{0x81, 0xa6, 'A', 'm', 'o', 'u', 'n', 't', 0x07})); err != nil ||
		!slices.Equal(got, []bank.Deposited{{Amount: 7}}) {
		t.Errorf("handler of Deposited: %v, %v", got, err)
	}
	if got := h.Names(); !slices.Equal(got, []string{"bank.deposited"}) {
		t.Errorf("wire names %q", got)
	}
}

func TestBuildRebuildAndBuildOnce(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	head := seed(t, store)

	b, deposits := &readmodel.Balances{}, &bank.Deposits{}
	group := projection.NewGroup(store, projection.CheckpointEvery(1, 0))
	for _, p := range []projection.Projection{b.Projection(), deposits.Projection()} {
		if err := group.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- group.Run(runCtx) }()
	check := func(step string) {
		t.Helper()
		for _, name := range []string{readmodel.BalancesProjectionName, bank.DepositsProjectionName} {
			if err := group.WaitFor(ctx, name, head); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		got, audits := b.Snapshot()
		if !maps.Equal(got, wantBalances) || audits != 1 {
			t.Errorf("%s: balances %v audits %d, want %v and 1", step, got, audits, wantBalances)
		}
		if deposits.Total() != 105 {
			t.Errorf("%s: deposits %d, want 105", step, deposits.Total())
		}
	}
	check("built")
	for _, name := range []string{readmodel.BalancesProjectionName, bank.DepositsProjectionName} {
		if err := group.Rebuild(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	check("rebuilt")
	st, err := group.Status(ctx, readmodel.BalancesProjectionName)
	if err != nil || !st.ExactlyOnce || st.Rebuilds != 1 || st.Lag != 0 {
		t.Errorf("status %+v, %v", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Built once, by a fresh model and a lone runner: the same.
	once := &readmodel.Balances{}
	runCtx, cancel = context.WithCancel(ctx)
	go func() { done <- projection.Run(runCtx, store, once.Projection()) }()
	for {
		if pos, _ := once.Position(ctx); pos >= head-1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, audits := once.Snapshot(); !maps.Equal(got, wantBalances) || audits != 1 {
		t.Errorf("built once: %v %d", got, audits)
	}
}

func TestCorruptRecordStopsWithoutRetry(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	seed(t, store)
	res, err := store.Append(ctx, runtime.AppendRequest{
		Stream:   runtime.StreamID{Type: bank.AccountStreamType, ID: "a"},
		Expected: 3,
		Events:   []runtime.EventData{{Name: bank.DepositedEventName, Schema: 1, Data: []byte{0xc1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = projection.Run(ctx, store, (&readmodel.Balances{}).Projection(), projection.HandlerRetry(3, time.Millisecond))
	var pe *projection.Error
	if !errors.As(err, &pe) || !errors.Is(err, runtime.ErrCorrupt) {
		t.Fatalf("got %v, want a *ProjectionError matching ErrCorrupt", err)
	}
	var de *runtime.DecodeError
	if !errors.As(err, &de) || de.Position != res.LastPosition || de.Stream.ID != "a" || de.What != bank.DepositedEventName {
		t.Errorf("decode error %+v, want position %d of stream a", de, res.LastPosition)
	}
	if pe.Attempts != 1 || pe.Position != res.LastPosition || pe.Event != bank.DepositedEventName {
		t.Errorf("projection error %+v: want one attempt at position %d", pe, res.LastPosition)
	}
}

func TestHandlerErrorIsRetriedThenStops(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	if _, err := bank.NewAccountRepository(store).Append(ctx, "z", runtime.NoStream, bank.Opened{Owner: "boom"}); err != nil {
		t.Fatal(err)
	}
	err := projection.Run(ctx, store, (&readmodel.Balances{}).Projection(), projection.HandlerRetry(2, time.Millisecond))
	var pe *projection.Error
	if !errors.As(err, &pe) || !errors.Is(err, readmodel.ErrBoom) || pe.Attempts != 2 || pe.Stream.ID != "z" {
		t.Fatalf("got %v (%+v), want ErrBoom after 2 attempts on stream z", err, pe)
	}
}
