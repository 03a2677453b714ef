// Command bank runs the bank example end to end on the embedded Pebble
// store: it opens accounts, moves money, shows a rejected command, an
// idempotent retry and an optimistic-concurrency conflict, reads the event
// streams back, then closes the store, reopens it and loads the accounts
// again from disk.
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
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
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
	return nil
}

func owner(id string) string {
	for i := range id {
		if id[i] == '-' {
			return id[:i]
		}
	}
	return id
}
