package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
)

// BenchmarkHardDeleteAmongKeys times a hard delete of a one-event stream
// with one idempotency key on two stores, alternating between them: one
// holding no other keys (the limit) and one holding the keys of
// CQRSGEN_BENCH_KEYS other streams (default 1,000,000). idempotency is
// keyed by key alone, so the delete's count and DELETE of the stream's
// keys scan the table; the difference is those scans.
func BenchmarkHardDeleteAmongKeys(b *testing.B) {
	storetest.BenchHardDeleteAmongKeys(b, func(n int) storetest.HardDeleter {
		schema := pgtest.Schema(b)
		s := openIn(b, schema)
		// Rows inserted in one statement: a million keyed appends would
		// take minutes and measure nothing more.
		if _, err := s.pool.Exec(context.Background(), fmt.Sprintf(`INSERT INTO %s.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
SELECT convert_to('key-' || i, 'UTF8'), 'Other'::bytea, convert_to(i::text, 'UTF8'), 1, i, 1900000000, 0 FROM generate_series(1, %d) AS i`, schema, n)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.pool.Exec(context.Background(), fmt.Sprintf(`ANALYZE %s.idempotency`, schema)); err != nil {
			b.Fatal(err)
		}
		return s
	})
}
