package memory_test

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// resetEvery bounds the events one benchmark store holds, so that long runs
// measure appends rather than the garbage collector scanning gigabytes.
const resetEvery = 1 << 16

func benchEvents(n int) []runtime.EventData {
	evs := make([]runtime.EventData, n)
	for i := range evs {
		evs[i] = runtime.EventData{
			Name:     "Deposited",
			Schema:   1,
			Metadata: map[string]string{"correlation": "c-1"},
			Data:     fmt.Appendf(nil, `{"amount":%08d,"currency":"EUR","note":"benchmark event"}`, i),
		}
	}
	return evs
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			evs := benchEvents(n)
			s := memory.New()
			st := runtime.StreamID{Type: "Account", ID: "bench"}
			var version uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if version+uint64(n) > resetEvery {
					b.StopTimer()
					s.Close()
					s, version = memory.New(), 0
					b.StartTimer()
				}
				res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: version, Events: evs})
				if err != nil {
					b.Fatal(err)
				}
				version = res.LastVersion
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			evs := benchEvents(n)
			var (
				cur    atomic.Pointer[memory.Store]
				events atomic.Int64
				ids    atomic.Int64
			)
			cur.Store(memory.New())
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				st := runtime.StreamID{Type: "Account", ID: fmt.Sprint(ids.Add(1))}
				for pb.Next() {
					s := cur.Load()
					if events.Add(int64(n)) > resetEvery {
						// One goroutine swaps in a fresh store; the old one is
						// left to the collector (others may still append to it).
						if cur.CompareAndSwap(s, memory.New()) {
							events.Store(0)
						}
					}
					if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// populated returns a store holding a stream of n events among other
// streams' events.
func populated(b *testing.B, n int) (*memory.Store, runtime.StreamID) {
	b.Helper()
	ctx := context.Background()
	s := memory.New()
	st := runtime.StreamID{Type: "Account", ID: "read"}
	evs := benchEvents(1)
	for i := range n {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: evs}); err != nil {
			b.Fatal(err)
		}
		other := runtime.StreamID{Type: "Account", ID: fmt.Sprint("other-", i%10)}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	return s, st
}

func BenchmarkReadStream(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, st := populated(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := 0
				for _, err := range s.ReadStream(ctx, st, 0) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("read %d events, want %d", got, n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	s, _ := populated(b, n/2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got := 0
		for _, err := range s.ReadAll(ctx, 0) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("read %d events, want %d", got, n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// reportPercentiles reports the p50 and p99 of per-operation durations.
// Each duration includes one time.Now call (tens of nanoseconds).
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

// BenchmarkLatency records each operation's duration to report real
// percentiles, not only the mean that ns/op is.
func BenchmarkLatency(b *testing.B) {
	ctx := context.Background()
	b.Run("append-1", func(b *testing.B) {
		evs := benchEvents(1)
		s := memory.New()
		st := runtime.StreamID{Type: "Account", ID: "latency"}
		var version uint64
		d := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if version >= resetEvery {
				b.StopTimer()
				s.Close()
				s, version = memory.New(), 0
				b.StartTimer()
			}
			t0 := time.Now()
			res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: version, Events: evs})
			d = append(d, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			version = res.LastVersion
		}
		b.StopTimer()
		reportPercentiles(b, d)
	})
	b.Run("readstream-10", func(b *testing.B) {
		s, st := populated(b, 10)
		d := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			got := 0
			for _, err := range s.ReadStream(ctx, st, 0) {
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			d = append(d, time.Since(t0))
			if got != 10 {
				b.Fatalf("read %d events, want 10", got)
			}
		}
		b.StopTimer()
		reportPercentiles(b, d)
	})
}

// BenchmarkHeapPerEvent appends 1,000,000 events like the bank example's
// Deposited (a 44-byte body, no metadata) over 1,000 streams, 100 per
// append, and reports the live heap the store holds per event after a
// collection.
func BenchmarkHeapPerEvent(b *testing.B) {
	const total, streams, batch = 1_000_000, 1000, 100
	// Bodies like the bank example's Deposited in MessagePack, 44 bytes,
	// each with its own amount and reference (as compressible as real
	// ones, unlike a repeated body).
	evs := make([][]runtime.EventData, total/batch)
	for i := range evs {
		evs[i] = make([]runtime.EventData, batch)
		for j := range evs[i] {
			n := i*batch + j
			body := fmt.Appendf([]byte("\x82\xa6Amount\xce"), "%c%c%c%c\xa9Reference\xb0bench-ref-%06d", byte(n>>24), byte(n>>16), byte(n>>8), byte(n), n%1_000_000)
			evs[i][j] = runtime.EventData{Name: "bank.account.deposited", Schema: 1, Data: body}
		}
	}
	ctx := context.Background()
	for range b.N {
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		s := memory.New()
		for i := range total / batch {
			st := runtime.StreamID{Type: "bank.account", ID: fmt.Sprint("log-", i%streams)}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs[i]}); err != nil {
				b.Fatal(err)
			}
		}
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/total, "heap-bytes/event")
		goruntime.KeepAlive(s)
	}
}
