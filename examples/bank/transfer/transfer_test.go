package transfer_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/examples/bank/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

type stores struct {
	name   string
	open   func(t *testing.T) runtime.Store
	reopen bool // the store can be closed and opened again from disk
}

func backends(t *testing.T) []stores {
	dir := filepath.Join(t.TempDir(), "store")
	return []stores{
		{"memory", func(*testing.T) runtime.Store { return memory.New() }, false},
		{"pebble", func(t *testing.T) runtime.Store {
			s, err := pebble.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, true},
	}
}

// bank opens accounts src (balance 100.00), dst and closed.
func bank(t *testing.T, s runtime.Store) *account.AccountRepository {
	t.Helper()
	ctx := context.Background()
	accounts := account.NewAccountRepository(s)
	for _, c := range []struct {
		id  string
		cmd account.AccountCommand
	}{
		{"src", account.OpenAccount{Owner: "Src"}}, {"src", account.Deposit{Amount: 100_00}},
		{"dst", account.OpenAccount{Owner: "Dst"}}, {"closed", account.OpenAccount{Owner: "Gone"}},
		{"closed", account.CloseAccount{Reason: "test"}},
	} {
		if _, err := accounts.Execute(ctx, c.id, c.cmd); err != nil {
			t.Fatal(err)
		}
	}
	return accounts
}

// start runs the saga until the test ends or stop is called.
func start(t *testing.T, s runtime.Store, accounts *account.AccountRepository, clock saga.Clock) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- saga.Run(ctx, s, transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts}), saga.WithClock(clock))
	}()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func request(t *testing.T, s runtime.Store, id, from, to string, amount int64) {
	t.Helper()
	if _, err := transfer.NewRequestRepository(s).Execute(context.Background(), id, transfer.RequestTransfer{From: from, To: to, Amount: amount}); err != nil {
		t.Fatal(err)
	}
}

func waitFinal(t *testing.T, s runtime.Store, accounts *account.AccountRepository, id string) *saga.Instance[transfer.Transfer] {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-5*time.Second))
	defer cancel()
	in, err := saga.WaitFor(ctx, s, transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts}), id, nil)
	switch {
	case err != nil && in != nil:
		t.Fatalf("transfer %s is still %v: %v; steps %+v", id, in.Status, err, in.Steps)
	case err != nil:
		t.Fatal(err)
	}
	return in
}

func balance(t *testing.T, accounts *account.AccountRepository, id string) int64 {
	t.Helper()
	a, _, err := accounts.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

func TestTransfer(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			defer s.Close()
			accounts := bank(t, s)
			clock := saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			stop := start(t, s, accounts, clock)
			request(t, s, "ok", "src", "dst", 30_00)
			request(t, s, "to-closed", "src", "closed", 20_00)
			for _, c := range []struct {
				id     string
				status saga.Status
			}{{"ok", saga.Completed}, {"to-closed", saga.Compensated}} {
				if in := waitFinal(t, s, accounts, c.id); in.Status != c.status {
					t.Errorf("%s: %v (%s), want %v", c.id, in.Status, in.Reason, c.status)
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if src, dst := balance(t, accounts, "src"), balance(t, accounts, "dst"); src != 70_00 || dst != 30_00 {
				t.Errorf("balances src %d dst %d, want 7000 and 3000", src, dst)
			}
		})
	}
}

// TestTransferTimesOutAcrossRestart stops the saga between the withdrawal
// and the deposit (the deposit's execution fails as if the process died),
// lets the deadline pass while nothing runs, and restarts it (Pebble: from
// disk): the deadline fires, the source is refunded, nothing is doubled.
func TestTransferTimesOutAcrossRestart(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			accounts := bank(t, s)
			clock := saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			ctx, cancel := context.WithCancel(context.Background())
			sg := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})
			dying := *sg
			dying.Execute = func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
				if _, deposit := c.(account.Deposit); deposit {
					cancel() // the process dies before the deposit
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return sg.Execute(ctx, id, c, opts...)
			}
			request(t, s, "slow", "src", "dst", 30_00)
			if err := saga.Run(ctx, s, &dying, saga.WithClock(clock)); err != nil {
				t.Fatalf("stopped runner: %v", err)
			}
			if got := balance(t, accounts, "src"); got != 70_00 {
				t.Fatalf("src balance %d after the withdrawal, want 7000", got)
			}
			if b.reopen {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = b.open(t)
				accounts = account.NewAccountRepository(s)
			}
			defer s.Close()
			clock.Advance(transfer.DepositTimeout + time.Second)
			stop := start(t, s, accounts, clock)
			in := waitFinal(t, s, accounts, "slow")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if in.Status != saga.Compensated || in.Reason != transfer.ErrDepositTimedOut.Error() {
				t.Errorf("status %v reason %q, want compensated after the timeout", in.Status, in.Reason)
			}
			if src, dst := balance(t, accounts, "src"), balance(t, accounts, "dst"); src != 100_00 || dst != 0 {
				t.Errorf("balances src %d dst %d, want 10000 and 0", src, dst)
			}
			var withdrawals int
			for env, err := range accounts.Events(context.Background(), "src", 0) {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := env.Event.(account.Withdrawn); ok {
					withdrawals++
				}
			}
			if withdrawals != 1 {
				t.Errorf("%d withdrawals from src, want 1", withdrawals)
			}
		})
	}
}
