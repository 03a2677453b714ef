package readmodel_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/examples/bank/readmodel"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// BenchmarkCatchUp measures how fast the generated Balances projection
// catches up with a log of b.N account events (streams of 1,000: one
// Opened, then Deposited), through the store's ReadAll, the generated
// dispatch and Decode<E>, and the read model's handlers. Seeding is not
// timed.
//
//	go test -run XXX -bench CatchUp -benchtime 1000000x ./examples/bank/readmodel
func BenchmarkCatchUp(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchCatchUp(b, memory.New()) })
	b.Run("pebble", func(b *testing.B) {
		store, err := pebble.Open(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		benchCatchUp(b, store)
	})
}

func benchCatchUp(b *testing.B, store runtime.Store) {
	ctx := context.Background()
	accounts := account.NewAccountRepository(store)
	const perStream = 1000
	for i, n := 0, 0; n < b.N; i++ {
		k := min(perStream, b.N-n)
		evs := make([]account.AccountEvent, 0, k)
		evs = append(evs, account.Opened{Owner: fmt.Sprintf("owner-%d", i%100)})
		for len(evs) < k {
			evs = append(evs, account.Deposited{Amount: 1, Reference: "bench"})
		}
		if _, err := accounts.Append(ctx, fmt.Sprintf("acct-%d", i), runtime.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
		n += k
	}
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	balances := &readmodel.Balances{}
	group := projection.NewGroup(store)
	if err := group.Add(balances.Projection()); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- group.Run(runCtx) }()
	if err := group.WaitFor(ctx, readmodel.BalancesProjectionName, head); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, o := range balances.ByOwner() {
		total += o.Balance
	}
	if want := int64(b.N) - int64((b.N+perStream-1)/perStream); total != want {
		b.Fatalf("balances sum to %d, want %d", total, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
