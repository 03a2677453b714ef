package projection

import (
	"context"
	"sync"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Activity counts events of both aggregates, at least once.
//
//cqrs:projection
type Activity struct {
	mu    sync.Mutex
	Count map[string]int
}

// Helper is not a handler: "Online" does not start with On + upper case.
func (a *Activity) Online() bool { return true }

func (a *Activity) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error {
	return a.add(e.ID)
}

func (a *Activity) OnNoted(_ context.Context, e runtime.Envelope[Noted]) error {
	return a.add(e.ID)
}

func (a *Activity) add(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Count == nil {
		a.Count = map[string]int{}
	}
	a.Count[id]++
	return nil
}

// Balances keeps balances exactly once: the position moves with the state.
//
//cqrs:projection name=bank:balances
type Balances struct {
	mu       sync.Mutex
	balances map[string]int64
	position uint64
}

func (b *Balances) OnDeposited(ctx context.Context, e runtime.Envelope[Deposited]) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balances == nil {
		b.balances = map[string]int64{}
	}
	b.balances[e.ID] += e.Event.Amount
	b.position = e.Position
	return nil
}

func (b *Balances) Reset(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.balances, b.position = nil, 0
	return nil
}

func (b *Balances) Position(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.position, nil
}
