// Package readmodel is the bank example's read side: a Balances projection
// that keeps the money held by each owner across all their accounts, fed
// by the account events through the code cqrsgen generates into
// cqrs_gen.go.
//
// The model lives in memory, so it keeps its position itself, under the
// same lock as its state (exactly-once delivery): a fresh process starts
// at position 0 and replays the log, and no event is ever applied twice.
// A read model kept in a database would commit the position in the same
// transaction as its rows.
package readmodel

//go:generate go tool cqrsgen

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// Balances is the balances-by-owner read model. Its zero value is empty
// and ready to use; it is safe for concurrent use (the projection writes
// while callers read).
//
//cqrs:projection name=bank.balances-by-owner
type Balances struct {
	mu       sync.Mutex
	accounts map[string]*accountRow // by account id
	position uint64                 // last position applied, committed with the rows
}

type accountRow struct {
	owner   string
	balance int64
	closed  bool
}

// OwnerBalance is one line of the read model.
type OwnerBalance struct {
	Owner string
	// Balance is the sum of the owner's account balances, in cents.
	Balance int64
	// Open and Closed count the owner's accounts.
	Open, Closed int
}

// ByOwner returns the balances by owner, sorted by owner.
func (b *Balances) ByOwner() []OwnerBalance {
	b.mu.Lock()
	defer b.mu.Unlock()
	byOwner := map[string]*OwnerBalance{}
	for _, a := range b.accounts {
		o := byOwner[a.owner]
		if o == nil {
			o = &OwnerBalance{Owner: a.owner}
			byOwner[a.owner] = o
		}
		o.Balance += a.balance
		if a.closed {
			o.Closed++
		} else {
			o.Open++
		}
	}
	out := make([]OwnerBalance, 0, len(byOwner))
	for _, o := range byOwner {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(x, y OwnerBalance) int { return strings.Compare(x.Owner, y.Owner) })
	return out
}

// apply runs change on the row of the event's account under the lock and
// commits the event's position with it. A position at or below the
// committed one was applied already and is ignored, which keeps the model
// exact even if a record were delivered twice.
func (b *Balances) apply(id string, position uint64, change func(*accountRow)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if position <= b.position {
		return nil
	}
	if b.accounts == nil {
		b.accounts = map[string]*accountRow{}
	}
	row := b.accounts[id]
	if row == nil {
		row = &accountRow{}
		b.accounts[id] = row
	}
	change(row)
	b.position = position
	return nil
}

// OnOpened records the account's owner.
func (b *Balances) OnOpened(_ context.Context, e runtime.Envelope[account.Opened]) error {
	return b.apply(e.ID, e.Position, func(r *accountRow) { r.owner = e.Event.Owner })
}

// OnDeposited adds the amount to the account's balance.
func (b *Balances) OnDeposited(_ context.Context, e runtime.Envelope[account.Deposited]) error {
	return b.apply(e.ID, e.Position, func(r *accountRow) { r.balance += e.Event.Amount })
}

// OnWithdrawn takes the amount off the account's balance.
func (b *Balances) OnWithdrawn(_ context.Context, e runtime.Envelope[account.Withdrawn]) error {
	return b.apply(e.ID, e.Position, func(r *accountRow) { r.balance -= e.Event.Amount })
}

// OnAccountClosed marks the account closed.
func (b *Balances) OnAccountClosed(_ context.Context, e runtime.Envelope[account.AccountClosed]) error {
	return b.apply(e.ID, e.Position, func(r *accountRow) { r.closed = true })
}

// Reset empties the model and its position together (a rebuild replays
// the log from the start).
func (b *Balances) Reset(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.accounts, b.position = nil, 0
	return nil
}

// Position returns the last position applied: the projection resumes
// after it (exactly-once delivery).
func (b *Balances) Position(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.position, nil
}
