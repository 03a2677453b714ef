package runtime_test

import (
	"context"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
)

// BenchmarkRepositoryExecute executes a Deposit on one open account of the
// generated Account repository over the memory store, with the generated
// defaults (a snapshot every 100 events, so each load reads a snapshot and
// at most 99 events): load, decide, append, nothing else configured.
func BenchmarkRepositoryExecute(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	repo := account.NewAccountRepository(store)
	if _, err := repo.Execute(ctx, "bench", account.OpenAccount{Owner: "bench owner"}); err != nil {
		b.Fatal(err)
	}
	cmd := account.Deposit{Amount: 12_345, Reference: "bench-ref-000042"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := repo.Execute(ctx, "bench", cmd); err != nil {
			b.Fatal(err)
		}
	}
}
