package storetest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// HardDeleter is a store that deletes streams itself (as the three
// backends do), timed without lifecycle.DeleteStream's key-store steps.
type HardDeleter interface {
	runtime.Store
	lifecycle.StreamDeleter
}

// BenchHardDeleteAmongKeys times hard deletes of one-event, one-key
// streams on two stores of one backend made by open: the limit, holding no
// other idempotency key, and one holding the keys of CQRSGEN_BENCH_KEYS
// other streams (default 1,000,000; a store that finds a stream's keys by
// reading them all pays for every one). The two take turns, the order
// alternated every iteration, and the benchmark reports each side's p50
// and p99 in µs, under "limit" and "<n>keys".
func BenchHardDeleteAmongKeys(b *testing.B, open func(otherKeys int) HardDeleter) {
	ctx := context.Background()
	keys := 1_000_000
	if v := os.Getenv("CQRSGEN_BENCH_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("CQRSGEN_BENCH_KEYS: %v", err)
		}
		keys = n
	}
	stores := [2]HardDeleter{open(0), open(keys)}
	names := [2]string{"limit", fmt.Sprintf("%dkeys", keys)}
	durs := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			if i%2 == 1 {
				k = 1 - k
			}
			s := stores[k]
			st := runtime.StreamID{Type: "Doomed", ID: strconv.Itoa(i)}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, IdempotencyKey: "doomed-" + st.ID,
				Events: []runtime.EventData{{Name: "E", Schema: 1, Data: []byte{0x80}}}}); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			res, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: st, Mode: runtime.HardDelete})
			durs[names[k]] = append(durs[names[k]], time.Since(t0))
			if err != nil || res.IdempotencyKeys != 1 {
				b.Fatalf("hard delete = %+v, %v; want 1 key removed", res, err)
			}
		}
	}
	b.StopTimer()
	for _, n := range names {
		ReportPercentiles(b, n, durs[n])
	}
}

// ReportPercentiles reports the p50 and p99 of d, in µs, as the metrics
// name-p50-µs and name-p99-µs.
func ReportPercentiles(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	p := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(p(0.50), fmt.Sprintf("%s-p50-µs", name))
	b.ReportMetric(p(0.99), fmt.Sprintf("%s-p99-µs", name))
}
