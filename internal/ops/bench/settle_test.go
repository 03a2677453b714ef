package bench

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestOpenSettledPebble checks that the store and the raw database of a
// settled pair hold the same event records, every table in the same
// compacted state: nothing in a memtable or in L0 on either side.
func TestOpenSettledPebble(t *testing.T) {
	ctx := context.Background()
	r := &runner{cfg: Config{Progress: nopProgress{}, Log: io.Discard}, root: t.TempDir()}
	const total = 3000
	sp, err := r.openSettledPebble(ctx, func(s runtime.Store) error {
		return populateLog(ctx, total, func(ctx context.Context, stream int, version uint64, n int) error {
			_, err := s.Append(ctx, runtime.AppendRequest{
				Stream:   runtime.StreamID{Type: streamType, ID: fmt.Sprintf("log-%d", stream)},
				Expected: version, Events: sampleBatch(n),
			})
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sp.close(); err != nil {
			t.Error(err)
		}
	}()
	var storeBytes int
	n := 0
	for rec, err := range sp.store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		storeBytes += len(rec.Data)
	}
	if n != total {
		t.Fatalf("store ReadAll: %d records, want %d", n, total)
	}
	raw := 0
	if err := rawPebbleScan(sp.raw)(func(int) bool { raw++; return true }); err != nil {
		t.Fatal(err)
	}
	if raw != total {
		t.Fatalf("raw scan: %d records, want %d", raw, total)
	}
	// Every table in the bottom level, none elsewhere, and the records
	// out of the memtable: without the flush and the compaction, 3,000
	// events stay in the memtable and no level holds a table.
	m := sp.raw.Metrics()
	last := len(m.Levels) - 1
	for l := range last {
		if c := m.Levels[l].TablesCount; c != 0 {
			t.Errorf("raw database: %d tables in L%d after settling, want 0", c, l)
		}
	}
	if c := m.Levels[last].TablesCount; c == 0 {
		t.Errorf("raw database: no table in L%d after settling", last)
	}
	if storeBytes == 0 {
		t.Error("store ReadAll returned no event data")
	}
}
