package instrument_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// BenchmarkWrappedLoad loads a 100-event Account stream (snapshots off)
// through the generated repository over the bare store, an instrumented
// one (instrument.New, a Metrics that drops the calls) and a tenant's
// view, for memory and Pebble, and reports each Load's p50 and p99:
//
//	go test ./runtime/instrument -run '^$' -bench WrappedLoad -benchtime 20000x
func BenchmarkWrappedLoad(b *testing.B) {
	const n = 100
	for _, kind := range []string{"memory", "pebble"} {
		for _, wrap := range []string{"bare", "instrument", "tenant"} {
			b.Run(fmt.Sprintf("store=%s/wrap=%s", kind, wrap), func(b *testing.B) {
				ctx := context.Background()
				var store runtime.Store = memory.New()
				if kind == "pebble" {
					s, err := pebble.Open(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					store = s
				}
				defer store.Close()
				switch wrap {
				case "instrument":
					store = instrument.New(store, instrument.MetricsFunc(func(instrument.Call) {}))
				case "tenant":
					v, err := tenant.Scope(store, "acme")
					if err != nil {
						b.Fatal(err)
					}
					store = v
				}
				fill := account.NewAccountRepository(store, runtime.WithSnapshotEvery(0))
				if _, err := fill.Append(ctx, "load", runtime.NoStream, account.Opened{Owner: "bench owner"}); err != nil {
					b.Fatal(err)
				}
				for i := 1; i < n; i++ {
					if _, err := fill.Append(ctx, "load", uint64(i), account.Deposited{Amount: 12_345, Reference: "bench-ref-000042"}); err != nil {
						b.Fatal(err)
					}
				}
				repo := account.NewAccountRepository(store, runtime.WithSnapshotEvery(0))
				d := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					state, v, err := repo.Load(ctx, "load")
					d = append(d, time.Since(t0))
					if err != nil || v != n || state.Deposits != n-1 {
						b.Fatalf("loaded version %d with %d deposits (%v)", v, state.Deposits, err)
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
}
