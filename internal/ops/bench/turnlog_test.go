package bench

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestTurnStates checks the state the turn log reads from each kind of
// side: a raw Pebble database and the Pebble store report their WAL,
// flush and L0 figures under the same names, the store its commits too,
// and a store without metrics (memory) reports nothing.
func TestTurnStates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := openPebbleDir(filepath.Join(dir, "raw"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := pebble.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: streamType, ID: "a"}, Events: sampleBatch(3)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		state func() string
		want  []string
	}{
		{"raw pebble", pebbleState(db), []string{"wal_files=1 ", "flushes=0 ", "l0_files=0 "}},
		{"pebble store", storeState(ctx, s), []string{"wal_files=1 ", "flushes=0 ", "l0_files=0 ", "commits=1 "}},
	} {
		got := tc.state()
		for _, w := range tc.want {
			if !strings.Contains(got+" ", w) {
				t.Errorf("%s: state %q lacks %q", tc.name, got, w)
			}
		}
	}
	if f := storeState(ctx, memory.New()); f != nil {
		t.Errorf("memory store: state %q, want none", f())
	}
}
