package pebble

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// BenchmarkHardDeleteAmongKeys times a hard delete of a one-event stream
// with one idempotency key on two stores, alternating between them: one
// holding no other keys (the limit) and one holding the keys of
// CQRSGEN_BENCH_KEYS other streams (default 1,000,000). Idempotency
// records are stored by key alone, so a hard delete reads all of them to
// find its stream's (streamIdemKeys); the difference is that scan.
func BenchmarkHardDeleteAmongKeys(b *testing.B) {
	storetest.BenchHardDeleteAmongKeys(b, func(n int) storetest.HardDeleter {
		s := openT(b, b.TempDir())
		b.Cleanup(func() { _ = s.Close() })
		// The records are written straight into Pebble in large batches:
		// appending a million keyed streams through the store would take
		// minutes and measure nothing more.
		t0 := time.Unix(1_900_000_000, 0)
		for i := 0; i < n; {
			batch := s.db.NewBatch()
			for j := 0; j < 100_000 && i < n; j, i = j+1, i+1 {
				rec := runtime.IdempotencyRecord{Stream: runtime.StreamID{Type: "Other", ID: strconv.Itoa(i)}, Version: 1, Position: uint64(i + 1), Time: t0}
				_ = batch.Set(idemKey(fmt.Sprintf("key-%09d", i)), encodeIdem(rec), nil)
			}
			if err := batch.Commit(pebbledb.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// BenchmarkAppendWALRecycling prices write-ahead log recycling, which the
// store keeps on (a hard delete removes the logs instead, purgeLogs):
// synced one-event appends on two stores with 1 MiB memtables (a new log
// every few hundred appends), one as it ships and one with recycling
// turned off (noRecycleCleaner, as the store did before), alternating
// between them.
func BenchmarkAppendWALRecycling(b *testing.B) {
	ctx := context.Background()
	noRecycling := WithPebbleOptions(func(o *pebbledb.Options) { o.Cleaner = noRecycleCleaner{} })
	stores := [2]*Store{openT(b, b.TempDir(), WithMemTableSize(1<<20), noRecycling), openT(b, b.TempDir(), WithMemTableSize(1<<20))}
	for _, s := range stores {
		b.Cleanup(func() { _ = s.Close() })
	}
	names := [2]string{"norecycle", "recycle"}
	data := make([]byte, 1000)
	durs := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			if i%2 == 1 {
				k = 1 - k
			}
			t0 := time.Now()
			if _, err := stores[k].Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "x"}, Expected: runtime.AnyVersion,
				Events: []runtime.EventData{{Name: "E", Schema: 1, Data: data}}}); err != nil {
				b.Fatal(err)
			}
			durs[names[k]] = append(durs[names[k]], time.Since(t0))
		}
	}
	b.StopTimer()
	for _, name := range names {
		storetest.ReportPercentiles(b, name, durs[name])
	}
}

// noRecycleCleaner deletes obsolete files and stops Pebble from recycling
// logs: Pebble recycles unless its Cleaner implements the unexported
// base.NeedsFileContents, which only embedding ArchiveCleaner (one level
// deeper than DeleteCleaner, whose Clean and String win) provides.
type noRecycleCleaner struct {
	pebbledb.DeleteCleaner
	archiveMarker
}

type archiveMarker struct{ pebbledb.ArchiveCleaner }

func (noRecycleCleaner) String() string { return "delete, no log recycling" }
