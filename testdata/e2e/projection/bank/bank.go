package bank

import (
	"context"
	"sync"

	"github.com/cqrsgen/cqrsgen/runtime"
)

//cqrs:aggregate name=bank.account
type Account struct{ Balance int64 }

//cqrs:event Account
type Opened struct{ Owner string }

//cqrs:event Account name=bank.deposited
type Deposited struct{ Amount int64 }

//cqrs:event Account name=bank.withdrawn
type Withdrawn struct{ Amount int64 }

func (a *Account) ApplyOpened(Opened)         {}
func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ApplyWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

// Deposits is a same-package, at-least-once projection: it counts each
// deposit once by (stream, version), so a replay after a crash is harmless.
//
//cqrs:projection
type Deposits struct {
	mu   sync.Mutex
	seen map[string]bool
	Sum  int64
}

func (d *Deposits) OnDeposited(ctx context.Context, e runtime.Envelope[Deposited]) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := e.ID + "/" + string(rune(e.Version))
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if !d.seen[key] {
		d.seen[key] = true
		d.Sum += e.Event.Amount
	}
	return nil
}

func (d *Deposits) Reset(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen, d.Sum = nil, 0
	return nil
}

// Total reads the sum.
func (d *Deposits) Total() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Sum
}
