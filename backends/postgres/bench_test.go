package postgres

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// BenchmarkAppend measures appends of 1 and 100 events by 1, 8 and 64
// concurrent writers, each on its own stream, against the test server
// (fsync on unless CQRSGEN_PG_FSYNC=off). It reports events/s.
func BenchmarkAppend(b *testing.B) {
	for _, events := range []int{1, 100} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", events, writers), func(b *testing.B) {
				s := newStore(b) // the default pool and groups
				batch := storetest.Events(events)
				var wg sync.WaitGroup
				b.ResetTimer()
				for w := range writers {
					n := b.N / writers
					if w < b.N%writers {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						st := runtime.StreamID{Type: "bench", ID: fmt.Sprint(w)}
						for i := range n {
							if _, err := s.Append(b.Context(), runtime.AppendRequest{Stream: st, Expected: uint64(i * events), Events: batch}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkLoad measures reading one whole stream of 10 or 1000 events
// with ReadStream, reporting p50 and p99 latency.
func BenchmarkLoad(b *testing.B) {
	for _, events := range []int{10, 1000} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			s := newStore(b)
			st := runtime.StreamID{Type: "bench", ID: "load"}
			for v := 0; v < events; v += 100 {
				n := min(100, events-v)
				if _, err := s.Append(b.Context(), runtime.AppendRequest{Stream: st, Expected: uint64(v), Events: storetest.Events(n)}); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				n := 0
				for _, err := range s.ReadStream(b.Context(), st, 0) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				lat = append(lat, time.Since(start))
				if n != events {
					b.Fatalf("read %d events, want %d", n, events)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkReadAll measures reading the whole log of 20,000 events from
// position 0, reporting events/s.
func BenchmarkReadAll(b *testing.B) { benchReadAll(b, 0) }

// BenchmarkReadAllWorking reads a log of 20,000 events as a projection
// does, spending about 2 µs of CPU on each event before taking the next,
// reporting events/s: what reading the next window while the caller works
// on one saves.
func BenchmarkReadAllWorking(b *testing.B) { benchReadAll(b, 2*time.Microsecond) }

// benchReadAll fills a store with 20,000 events in 1,000-event appends and
// reads it whole b.N times, spending work of CPU on each event.
func benchReadAll(b *testing.B, work time.Duration) {
	const total = 20_000
	s := newStore(b)
	for i := range total / 1000 {
		st := runtime.StreamID{Type: "bench", ID: fmt.Sprint(i)}
		if _, err := s.Append(b.Context(), runtime.AppendRequest{Stream: st, Events: storetest.Events(1000)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	sink := 0
	for range b.N {
		n := 0
		for r, err := range s.ReadAll(b.Context(), 0) {
			if err != nil {
				b.Fatal(err)
			}
			for t := time.Now(); work > 0 && time.Since(t) < work; {
				sink += len(r.Data)
			}
			n++
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
	_ = sink
}
