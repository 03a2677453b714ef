package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// tableBytes returns the total size of the store's sstables and the names
// of those that hold marker.
func tableBytes(t *testing.T, dir string, marker []byte) (int64, []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var holding []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a compaction meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(b))
		if bytes.Contains(b, marker) {
			holding = append(holding, e.Name())
		}
	}
	return total, holding
}

// TestHardDeleteReclaimsSpace writes a stream whose events and snapshot
// carry markers, flushes it to sstables, hard-deletes it, and checks that
// the compaction DeleteStream runs leaves no table holding the marker and
// the tables smaller by about the stream's size, while the other stream's
// events stay; and that after Close no file of the directory (write-ahead
// logs included) holds either marker.
func TestHardDeleteReclaimsSpace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("personal-data-7f3a9c")
	doomed, kept := runtime.StreamID{Type: "User", ID: "u-1"}, runtime.StreamID{Type: "User", ID: "u-2"}
	rnd := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) []byte { // bytes that do not compress away
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	const batches, perBatch = 40, 50
	for i := range batches {
		for _, st := range []runtime.StreamID{doomed, kept} {
			events := make([]runtime.EventData, perBatch)
			for j := range events {
				data := fmt.Appendf(nil, "%d-%d ", i, j)
				if st == doomed {
					data = append(data, marker...)
				} else {
					data = append(data, "other "...)
				}
				data = append(data, noise(800)...)
				events[j] = runtime.EventData{Name: "Changed", Schema: 1, Data: data}
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: events}); err != nil {
				t.Fatal(err)
			}
		}
	}
	snapMarker := []byte("snapshot-of-personal-data-91be04")
	if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: doomed, Version: 1, Schema: "user", Data: append(snapMarker, noise(100)...)}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	before, holding := tableBytes(t, dir, marker)
	if len(holding) == 0 {
		t.Fatalf("no table holds the marker before the delete: the test checks nothing")
	}
	res, err := lifecycle.DeleteStream(ctx, s, doomed, runtime.HardDelete)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != batches*perBatch {
		t.Fatalf("removed %d events, want %d", res.Events, batches*perBatch)
	}
	tables, err := s.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	var live int64
	for _, level := range tables {
		for _, tbl := range level {
			live += int64(tbl.Size)
		}
	}
	n := 0
	for rec, err := range s.ReadStream(ctx, kept, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(rec.Data, []byte("other")) {
			t.Fatalf("the kept stream's version %d lost its data", rec.Version)
		}
		n++
	}
	if n != batches*perBatch {
		t.Errorf("the kept stream has %d events, want %d", n, batches*perBatch)
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("Verify after the hard delete: %v", rep.Problems)
	}
	// Close waits for Pebble to remove the tables the compaction made
	// obsolete: what is left in the directory is what a reader of the disk
	// finds.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, holding := tableBytes(t, dir, marker)
	if len(holding) > 0 {
		t.Errorf("after the hard delete and its compaction, tables %v still hold the deleted events' bytes", holding)
	}
	// The deleted stream held half the data.
	if after > before*3/5 || live > before*3/5 {
		t.Errorf("tables hold %d bytes after the delete (%d live before Close), %d before: want them to shrink by about half", after, live, before)
	}
	// No file at all: the write-ahead logs that held the events and the
	// snapshot, those Pebble kept for reuse included, were removed by the
	// delete (purgeLogs).
	if files := filesHolding(t, dir, map[string][]byte{"the deleted events": marker, "the deleted snapshot": snapMarker}); len(files) > 0 {
		t.Errorf("after the hard delete and Close, files still hold the deleted bytes: %v", files)
	}
	t.Logf("sstables: %d bytes before the hard delete, %d after (%d events of ~%d bytes removed)", before, after, res.Events, 800+len(marker))
}
