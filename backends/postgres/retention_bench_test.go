package postgres

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// BenchmarkKeyedAppendTTL times single-event appends with a new
// idempotency key each, one writer, on two stores in one run, alternating:
// one keeps keys for ever, one has a TTL (and so deletes the key's expired
// record, if any, before each keyed append: one more statement).
func BenchmarkKeyedAppendTTL(b *testing.B) {
	stores := map[string]*Store{"forever": newStore(b), "ttl": newStore(b, WithIdempotencyTTL(24*time.Hour))}
	lat := map[string][]time.Duration{}
	ev := storetest.Events(1)
	b.ResetTimer()
	for i := range b.N {
		names := [2]string{"forever", "ttl"}
		if i%2 == 1 {
			names = [2]string{"ttl", "forever"}
		}
		for _, name := range names {
			t0 := time.Now()
			if _, err := stores[name].Append(b.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "bench", ID: "k"},
				Expected: runtime.AnyVersion, Events: ev, IdempotencyKey: fmt.Sprint("key-", i)}); err != nil {
				b.Fatal(err)
			}
			lat[name] = append(lat[name], time.Since(t0))
		}
	}
	b.StopTimer()
	for _, name := range []string{"forever", "ttl"} {
		d := lat[name]
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), name+"-p99-µs")
	}
}
