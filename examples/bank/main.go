// Command bank runs the bank example end to end on the embedded Pebble
// store: it opens accounts, moves money, shows a rejected command, an
// idempotent retry and an optimistic-concurrency conflict, reads the event
// streams back, then closes the store, reopens it and loads the accounts
// again from disk. Meanwhile a projection (package readmodel) keeps the
// balances by owner from the whole log; the demo waits for it to catch
// up, prints it, rebuilds it from scratch and checks that the rebuild
// gives the same balances.
//
//	go run ./examples/bank              # a fresh store under the OS temp dir
//	go run ./examples/bank -data DIR    # keep the store in DIR (reused across runs)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/examples/bank/readmodel"
	"github.com/cqrsgen/cqrsgen/examples/bank/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

func main() {
	data := flag.String("data", "", "store directory (default: a new directory under the OS temp dir, removed afterwards)")
	flag.Parse()
	if err := run(context.Background(), *data, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run executes the demo against the store in dir (a temporary one when dir
// is empty) and reports to w.
func run(ctx context.Context, dir string, w io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cqrsgen-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "store")
	}
	// Ids unique to this run, so that a kept -data directory can be run
	// against again.
	run := time.Now().UTC().Format("20060102T150405.000000000")
	alice, bob := "alice-"+run, "bob-"+run

	store, err := pebble.Open(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "store: pebble at %s (every append fsynced)\n\n", dir)
	accounts := account.NewAccountRepository(store)

	// The read side runs beside the commands: a projection group feeding
	// the balances-by-owner read model from the whole log, live.
	balances := &readmodel.Balances{}
	group := projection.NewGroup(store)
	if err := group.Add(balances.Projection()); err != nil {
		return err
	}
	groupCtx, stopGroup := context.WithCancel(ctx)
	defer stopGroup()
	groupDone := make(chan error, 1)
	go func() { groupDone <- group.Run(groupCtx) }()

	steps := []struct {
		id   string
		what string
		cmd  account.AccountCommand
		opts []runtime.ExecOption
	}{
		{alice, "open", account.OpenAccount{Owner: "Alice"}, nil},
		{bob, "open", account.OpenAccount{Owner: "Bob"}, nil},
		{alice, "deposit 100.00", account.Deposit{Amount: 100_00, Reference: "salary"}, nil},
		{alice, "withdraw 30.00", account.Withdraw{Amount: 30_00, Reference: "rent"}, nil},
		{alice, "withdraw 500.00", account.Withdraw{Amount: 500_00, Reference: "car"}, nil},
		{bob, "deposit 20.00 (key dep-1)", account.Deposit{Amount: 20_00, Reference: "gift"}, []runtime.ExecOption{runtime.IdempotencyKey("dep-1-" + run)}},
		{bob, "deposit 20.00 (key dep-1, retried)", account.Deposit{Amount: 20_00, Reference: "gift"}, []runtime.ExecOption{runtime.IdempotencyKey("dep-1-" + run)}},
		{bob, "close with money in it", account.CloseAccount{Reason: "moving"}, nil},
		{bob, "withdraw 20.00", account.Withdraw{Amount: 20_00, Reference: "cash"}, nil},
		{bob, "close", account.CloseAccount{Reason: "moving"}, nil},
		{bob, "deposit 1.00 after close", account.Deposit{Amount: 1_00}, nil},
	}
	fmt.Fprintln(w, "commands:")
	for _, s := range steps {
		v, err := accounts.Execute(ctx, s.id, s.cmd, s.opts...)
		if err != nil {
			fmt.Fprintf(w, "  %-6s %-36s rejected: %v\n", owner(s.id), s.what, err)
			continue
		}
		fmt.Fprintf(w, "  %-6s %-36s ok, version %d\n", owner(s.id), s.what, v)
	}

	// Optimistic concurrency: an append that expects a version the stream
	// has moved past is refused with a typed conflict.
	_, err = accounts.Append(ctx, alice, 1, account.Deposited{Amount: 1, Reference: "stale writer"})
	var conflict *runtime.ConflictError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("stale append: got %v, want a conflict", err)
	}
	fmt.Fprintf(w, "\nstale append expecting version %d: conflict, stream is at %d\n", conflict.Expected, conflict.Actual)

	fmt.Fprintln(w, "\nevents stored:")
	for _, id := range []string{alice, bob} {
		for env, err := range accounts.Events(ctx, id, 0) {
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %-6s v%d pos %-3d %-26s %+v\n", owner(id), env.Version, env.Position, env.Name, env.Event)
		}
	}

	if err := showReadModel(ctx, w, store, group, balances); err != nil {
		return err
	}
	stopGroup()
	if err := <-groupDone; err != nil {
		return fmt.Errorf("projections: %w", err)
	}

	if err := store.Close(); err != nil {
		return err
	}
	store, err = pebble.Open(dir)
	if err != nil {
		return fmt.Errorf("reopening: %w", err)
	}
	defer store.Close()
	accounts = account.NewAccountRepository(store)
	fmt.Fprintln(w, "\nafter closing and reopening the store:")
	for _, id := range []string{alice, bob} {
		a, v, err := accounts.Load(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-6s version %d  owner %-5s balance %7.2f  open %-5v closed %v\n",
			owner(id), v, a.Owner, float64(a.Balance)/100, a.Open, a.Closed)
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nstore: %d events in %d streams, head position %d, %d idempotency keys\n",
		st.Events, st.Streams, st.Head, st.IdempotencyKeys)
	return runTransfers(ctx, dir+".transfers", run, w)
}

// ---- Transfers: the transfer saga (package transfer) ----

// runTransfers moves money between accounts with the transfer saga, in a
// store of its own (dir) so that the sections above keep their figures: one
// transfer completes, one to a closed account is refunded. (A deposit that
// times out is refunded too; transfer's tests show it across a restart
// with a manual clock.)
func runTransfers(ctx context.Context, dir, run string, w io.Writer) error {
	store, err := pebble.Open(dir)
	if err != nil {
		return err
	}
	defer store.Close()
	accounts := account.NewAccountRepository(store)
	carol, dave, erin := "carol-"+run, "dave-"+run, "erin-"+run
	for _, c := range []struct {
		id  string
		cmd account.AccountCommand
	}{
		{carol, account.OpenAccount{Owner: "Carol"}}, {carol, account.Deposit{Amount: 100_00, Reference: "salary"}},
		{dave, account.OpenAccount{Owner: "Dave"}}, {erin, account.OpenAccount{Owner: "Erin"}},
		{erin, account.CloseAccount{Reason: "left"}},
	} {
		if _, err := accounts.Execute(ctx, c.id, c.cmd); err != nil {
			return err
		}
	}

	transferSaga := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})
	sagaCtx, stopSaga := context.WithCancel(ctx)
	defer stopSaga()
	sagaDone := make(chan error, 1)
	go func() { sagaDone <- saga.Run(sagaCtx, store, transferSaga) }()

	requests := transfer.NewRequestRepository(store)
	transfers := []struct {
		id, from, to string
		amount       int64
	}{{"t1-" + run, carol, dave, 25_00}, {"t2-" + run, carol, erin, 10_00}}
	fmt.Fprintf(w, "\ntransfers (saga %s):\n", transfer.TransferSagaName)
	for _, t := range transfers {
		if _, err := requests.Execute(ctx, t.id, transfer.RequestTransfer{From: t.from, To: t.to, Amount: t.amount}); err != nil {
			return err
		}
	}
	for _, t := range transfers {
		in, err := waitTransfer(ctx, store, transferSaga, t.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-3s %-5s -> %-5s %6.2f  %s", owner(t.id), owner(t.from), owner(t.to), float64(t.amount)/100, in.Status)
		if in.Reason != "" {
			fmt.Fprintf(w, " (%s)", in.Reason)
		}
		fmt.Fprintln(w)
		for _, st := range in.Steps {
			fmt.Fprintf(w, "      step %d %-16s to %-5s %s\n", st.Seq, st.Command, owner(st.Target), st.Status)
		}
	}
	stopSaga()
	if err := <-sagaDone; err != nil {
		return fmt.Errorf("transfer saga: %w", err)
	}
	fmt.Fprint(w, "  balances:")
	for _, id := range []string{carol, dave, erin} {
		a, _, err := accounts.Load(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s %.2f", owner(id), float64(a.Balance)/100)
	}
	fmt.Fprintln(w)
	return nil
}

// waitTransfer waits until a transfer has finished.
func waitTransfer(ctx context.Context, store runtime.Store, transferSaga *saga.Saga[transfer.Transfer], id string) (*saga.Instance[transfer.Transfer], error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	in, err := saga.WaitFor(ctx, store, transferSaga, id, nil)
	if err != nil && in != nil {
		return nil, fmt.Errorf("transfer %s still %v: %w", id, in.Status, err)
	}
	return in, err
}

// showReadModel waits for the balances projection to reach the store's
// head (read-your-writes), prints the balances by owner and the
// projection's status, then rebuilds it from position 0 and checks that the
// replay gives the same balances.
func showReadModel(ctx context.Context, w io.Writer, store runtime.Store, group *projection.Group, balances *readmodel.Balances) error {
	const name = readmodel.BalancesProjectionName
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if err := group.WaitFor(ctx, name, head); err != nil {
		return err
	}
	built := balances.ByOwner()
	fmt.Fprintf(w, "\nread model %s, caught up with position %d:\n", name, head)
	printBalances(w, built)

	if err := group.Rebuild(ctx, name); err != nil {
		return err
	}
	if err := group.WaitFor(ctx, name, head); err != nil {
		return err
	}
	rebuilt := balances.ByOwner()
	if !slices.Equal(built, rebuilt) {
		return fmt.Errorf("rebuilt read model differs:\nbuilt   %+v\nrebuilt %+v", built, rebuilt)
	}
	st, err := group.Status(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rebuilt from position 0: same balances (status: %s, exactly-once %v, position %d, lag %d, rebuilds %d)\n",
		st.State, st.ExactlyOnce, st.Position, st.Lag, st.Rebuilds)
	return nil
}

func printBalances(w io.Writer, rows []readmodel.OwnerBalance) {
	for _, r := range rows {
		fmt.Fprintf(w, "  %-6s balance %7.2f  accounts open %d closed %d\n", r.Owner, float64(r.Balance)/100, r.Open, r.Closed)
	}
}

func owner(id string) string {
	for i := range id {
		if id[i] == '-' {
			return id[:i]
		}
	}
	return id
}
