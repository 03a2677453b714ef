package postgres

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// BenchmarkHardDeleteAmongKeys times a hard delete of a one-event stream
// with one idempotency key on two stores, alternating between them: one
// holding no other keys (the limit) and one holding the keys of
// CQRSGEN_BENCH_KEYS other streams (default 1,000,000). idempotency is
// keyed by key alone, so the delete's count and DELETE of the stream's
// keys scan the table; the difference is those scans.
func BenchmarkHardDeleteAmongKeys(b *testing.B) {
	ctx := context.Background()
	keys := 1_000_000
	if v := os.Getenv("CQRSGEN_BENCH_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		keys = n
	}
	open := func(n int) *Store {
		schema := pgtest.Schema(b)
		s := openIn(b, schema)
		// Rows inserted in one statement: a million keyed appends would
		// take minutes and measure nothing more.
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
SELECT convert_to('key-' || i, 'UTF8'), 'Other'::bytea, convert_to(i::text, 'UTF8'), 1, i, 1900000000, 0 FROM generate_series(1, %d) AS i`, schema, n)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(`ANALYZE %s.idempotency`, schema)); err != nil {
			b.Fatal(err)
		}
		return s
	}
	stores := [2]*Store{open(0), open(keys)}
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
	for _, name := range names {
		reportPercentilesAs(b, name, durs[name])
	}
}

// reportPercentilesAs reports the p50 and p99 of d, in µs, under name.
func reportPercentilesAs(b *testing.B, name string, d []time.Duration) {
	slices.Sort(d)
	p := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(p(0.50), name+"-p50-µs")
	b.ReportMetric(p(0.99), name+"-p99-µs")
}
