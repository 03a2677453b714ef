package lease_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/internal/leasetest"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Of finds the Leaser behind a store, through wrappers such as
// instrument.Store. The memory and Pebble stores have none (one process
// owns them), so the runners run every projection and saga unleased; a
// *postgres.Store is a Leaser.
func ExampleOf() {
	_, ok := lease.Of(memory.New())
	fmt.Println("memory:", ok)
	_, ok = lease.Of(instrument.New(memory.New(), nil))
	fmt.Println("instrumented memory:", ok)

	// leasetest stands in for PostgreSQL's lease table in the runtime's
	// tests (it is internal: applications use backends/postgres).
	shared := leasetest.New(memory.New(), leasetest.NewTable())
	_, ok = lease.Of(instrument.New(shared, nil))
	fmt.Println("instrumented shared store:", ok)
	// Output:
	// memory: false
	// instrumented memory: false
	// instrumented shared store: true
}

// What the projection and saga runners do with a Leaser: take the lease,
// renew it, and release it; another holder meanwhile gets ErrHeld, and a
// write fenced by a lease that has moved on fails with ErrLost.
func ExampleLeaser() {
	ctx := context.Background()
	table := leasetest.NewTable() // one table, as one database
	a := leasetest.New(memory.New(), table)
	b := leasetest.New(memory.New(), table)

	held, _ := a.AcquireLease(ctx, "totals", "process-a", time.Hour)
	fmt.Println("a holds epoch", held.Epoch)
	held, _ = a.AcquireLease(ctx, "totals", "process-a", time.Hour) // renewal
	fmt.Println("a renewed, epoch", held.Epoch)

	current, err := b.AcquireLease(ctx, "totals", "process-b", time.Hour)
	fmt.Println("b:", errors.Is(err, lease.ErrHeld), "holder", current.Holder)

	_ = a.ReleaseLease(ctx, held) // b need not wait for the lease to expire
	taken, _ := b.AcquireLease(ctx, "totals", "process-b", time.Second)
	fmt.Println("b holds epoch", taken.Epoch)

	err = a.SaveCheckpointLeased(ctx, held, "totals", 42)
	fmt.Println("a's fenced write:", errors.Is(err, lease.ErrLost))
	// Output:
	// a holds epoch 1
	// a renewed, epoch 1
	// b: true holder process-a
	// b holds epoch 2
	// a's fenced write: true
}
