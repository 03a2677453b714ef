package runtime_test

import (
	"context"
	"fmt"
	goruntime "runtime"
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

// tailSink keeps BenchmarkRepositoryLoadTail's copies reachable until the
// next one, as a decoded event's string is until its Load returns.
var tailSink string

// BenchmarkRepositoryLoadTail looks for where the tail of a memory Load of
// a 100-event stream comes from. Each sub-benchmark alternates one read
// with a CPU-only loop calibrated to Load's median (spin: it neither
// allocates nor touches memory, so its tail is what the process and the
// machine do to any code: collections, preemption, other processes):
// load is the generated repository's Load; visit is VisitStream alone (the
// store's share: nothing decoded, nothing allocated); visit+copy is
// VisitStream copying each body into a new string, the allocation the
// generated decoder makes per event of a view not marked Stable
// (wire.Source; the memory store's views are). Each reports both
// sides' p50 and p99, the collections per 1,000 rounds and the bytes a
// round allocates.
//
//	go test ./runtime -run '^$' -bench 'RepositoryLoadTail' -benchtime 100000x
func BenchmarkRepositoryLoadTail(b *testing.B) {
	const n = 100
	ctx := context.Background()
	store := populatedRepo(b, n)
	repo := account.NewAccountRepository(store)
	stream := runtime.StreamID{Type: account.AccountStreamType, ID: "load"}
	load := func() {
		state, v, err := repo.Load(ctx, "load")
		if err != nil || v != n || state.Deposits != n-1 {
			b.Fatalf("loaded version %d with %d deposits (%v)", v, state.Deposits, err)
		}
	}
	visit := func(copyBody bool) func() {
		return func() {
			got := 0
			err := store.VisitStream(ctx, stream, 0, func(e *runtime.EventView) error {
				if copyBody {
					tailSink = string(e.Data)
				}
				got++
				return nil
			})
			if err != nil || got != n {
				b.Fatalf("visited %d events (%v)", got, err)
			}
		}
	}
	// The spin's length: as many rounds as take Load's median.
	median := func(f func()) time.Duration {
		d := make([]time.Duration, 2001)
		for i := range d {
			t0 := time.Now()
			f()
			d[i] = time.Since(t0)
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	target := median(load)
	rounds := 64
	for median(func() { spinWork(rounds) }) < target {
		rounds += rounds/8 + 1
	}
	spin := func() { spinWork(rounds) }
	for _, side := range []struct {
		name string
		run  func()
	}{{"load", load}, {"visit", visit(false)}, {"visit+copy", visit(true)}} {
		b.Run(side.name, func(b *testing.B) {
			sides := [2]func(){side.run, spin}
			var times [2][]time.Duration
			for i := range times {
				times[i] = make([]time.Duration, 0, b.N)
			}
			var before, after goruntime.MemStats
			goruntime.ReadMemStats(&before)
			b.ResetTimer()
			for i := range b.N {
				for j := range sides {
					k := (i + j) % len(sides)
					t0 := time.Now()
					sides[k]()
					times[k] = append(times[k], time.Since(t0))
				}
			}
			b.StopTimer()
			goruntime.ReadMemStats(&after)
			for k, name := range [2]string{side.name, "spin"} {
				d := times[k]
				slices.Sort(d)
				at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3 }
				b.ReportMetric(at(0.50), name+"-p50-µs")
				b.ReportMetric(at(0.99), name+"-p99-µs")
			}
			b.ReportMetric(float64(after.NumGC-before.NumGC)*1000/float64(b.N), "gcs/1000-rounds")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "B/round")
		})
	}
}

var spinSink uint64

// spinWork is rounds steps of an LCG: CPU work that neither allocates nor
// touches memory.
func spinWork(rounds int) {
	x := spinSink | 1
	for range rounds {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink = x
}
