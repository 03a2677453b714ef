package readmodel

import (
	"context"
	"errors"
	"sync"

	"example.com/e2e/projection/audit"
	"example.com/e2e/projection/bank"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// ErrBoom is returned by a handler when an owner is "boom".
var ErrBoom = errors.New("boom")

// Balances spans two aggregates of two other packages, exactly once.
//
//cqrs:projection name=e2e:balances
type Balances struct {
	mu       sync.Mutex
	Owner    map[string]string
	Balance  map[string]int64
	Audits   int
	position uint64
}

func (b *Balances) commit(pos uint64, f func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Owner == nil {
		b.Owner, b.Balance = map[string]string{}, map[string]int64{}
	}
	f()
	b.position = pos
	return nil
}

func (b *Balances) OnAccountOpened(ctx context.Context, e runtime.Envelope[bank.Opened]) error {
	if e.Event.Owner == "boom" {
		return ErrBoom
	}
	return b.commit(e.Position, func() { b.Owner[e.ID] = e.Event.Owner })
}

func (b *Balances) OnDeposited(ctx context.Context, e runtime.Envelope[bank.Deposited]) error {
	return b.commit(e.Position, func() { b.Balance[b.Owner[e.ID]] += e.Event.Amount })
}

func (b *Balances) OnWithdrawn(ctx context.Context, e runtime.Envelope[bank.Withdrawn]) error {
	return b.commit(e.Position, func() { b.Balance[b.Owner[e.ID]] -= e.Event.Amount })
}

func (b *Balances) OnAuditOpened(ctx context.Context, e runtime.Envelope[audit.Opened]) error {
	return b.commit(e.Position, func() { b.Audits++ })
}

func (b *Balances) Reset(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Owner, b.Balance, b.Audits, b.position = nil, nil, 0, 0
	return nil
}

func (b *Balances) Position(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.position, nil
}

// Snapshot copies the model.
func (b *Balances) Snapshot() (map[string]int64, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.Balance {
		out[k] = v
	}
	return out, b.Audits
}
