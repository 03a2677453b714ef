package runtime_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// The benchmarks below drive the generated Account repository over the
// memory store, the path the cqrsbench append and load rows measure:
// encoding + Store.Append for appends, Store.ReadStream + decoding + Apply
// for loads. Profile them with
//
//	go test -run '^$' -bench 'Repository(Append|Load)' -cpuprofile cpu.out -memprofile mem.out ./runtime

// benchDeposit is the event cqrsbench appends (internal/ops/bench sampleDeposit).
var benchDeposit account.AccountEvent = account.Deposited{Amount: 12_345, Reference: "bench-ref-000042"}

// benchResetEvery bounds the events one benchmark store holds, so that long
// runs measure appends rather than the collector scanning a large log.
const benchResetEvery = 1 << 16

func BenchmarkRepositoryAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			events := make([]account.AccountEvent, n)
			for i := range events {
				events[i] = benchDeposit
			}
			// Snapshots off, as in cqrsbench: no append pays for a load.
			store := memory.New()
			repo := account.NewAccountRepository(store, runtime.WithSnapshotEvery(0))
			var version uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if version+uint64(n) > benchResetEvery {
					b.StopTimer()
					_ = store.Close()
					store = memory.New()
					repo, version = account.NewAccountRepository(store, runtime.WithSnapshotEvery(0)), 0
					b.StartTimer()
				}
				v, err := repo.Append(ctx, "bench", version, events...)
				if err != nil {
					b.Fatal(err)
				}
				if v != version+uint64(n) {
					b.Fatalf("appended at version %d, want %d", v, version+uint64(n))
				}
				version = v
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// populatedRepo returns a memory store holding one Account stream of n
// events (an Opened then deposits), without a snapshot, among other
// streams' events.
func populatedRepo(b *testing.B, n int) *memory.Store {
	b.Helper()
	ctx := context.Background()
	s := memory.New()
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	if _, err := repo.Append(ctx, "load", runtime.NoStream, account.Opened{Owner: "bench owner"}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := repo.Append(ctx, "load", uint64(i), benchDeposit); err != nil {
			b.Fatal(err)
		}
		if _, err := repo.Append(ctx, fmt.Sprint("other-", i%10), runtime.AnyVersion, benchDeposit); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkRepositoryLoad loads a stream through a repository with the
// generated defaults (snapshots every 100 events, so Load looks for one
// first), recording each Load's duration to report p50 and p99, not only
// the mean that ns/op is. Each duration includes one time.Now call.
func BenchmarkRepositoryLoad(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			repo := account.NewAccountRepository(populatedRepo(b, n))
			d := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				state, v, err := repo.Load(ctx, "load")
				d = append(d, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if v != uint64(n) || state.Deposits != n-1 {
					b.Fatalf("loaded version %d with %d deposits, want %d and %d", v, state.Deposits, n, n-1)
				}
			}
			b.StopTimer()
			slices.Sort(d)
			at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) }
			b.ReportMetric(at(0.50), "p50-ns")
			b.ReportMetric(at(0.99), "p99-ns")
		})
	}
}
