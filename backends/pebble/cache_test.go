package pebble

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestBlockCacheFillsInCreatingProcess reads the cache statistics of a store
// whose memtables have grown to their full size: Pebble charges them
// against the block cache, and a cache sized without them held no block in
// the process that wrote the data (only after a reopen, with small
// memtables again, did it fill).
func TestBlockCacheFillsInCreatingProcess(t *testing.T) {
	const size = 1 << 20
	cases := []struct {
		name string
		opts []Option
	}{
		{"cache equal to memtable", []Option{WithCacheSize(size), WithMemTableSize(size)}},
		{"cache smaller than memtable", []Option{WithCacheSize(size / 4), WithMemTableSize(4 * size)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openT(t, t.TempDir(), append(tc.opts, WithNoSync(0))...)
			defer s.Close()
			body := make([]byte, 200)
			for i := range 100 {
				evs := make([]runtime.EventData, 200)
				for j := range evs {
					evs[j] = runtime.EventData{Name: "Deposited", Schema: 1, Data: body}
				}
				st := runtime.StreamID{Type: "Account", ID: fmt.Sprint(i)}
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Events: evs}); err != nil {
					t.Fatal(err)
				}
			}
			// Flushes run in the background: make sure the stream read
			// below is in a table, so that its reads go through the cache.
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			before, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if before.Extra["tables"] == 0 || before.Extra["memtable_bytes"] < size {
				t.Fatalf("the workload must flush tables and grow the memtable: %v", before.Extra)
			}
			const reads = 20
			for range reads {
				n := 0
				for _, err := range s.ReadStream(ctx, runtime.StreamID{Type: "Account", ID: "3"}, 0) {
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
				if n != 200 {
					t.Fatalf("read %d events, want 200", n)
				}
			}
			after, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after.Extra["cache_bytes"] == 0 {
				t.Errorf("block cache empty after %d reads of a flushed stream: %v", reads, after.Extra)
			}
			if hits := after.Extra["cache_hits"] - before.Extra["cache_hits"]; hits < reads {
				t.Errorf("%d cache hits in %d reads of the same stream, want at least one a read: %v", hits, reads, after.Extra)
			}
		})
	}
}
