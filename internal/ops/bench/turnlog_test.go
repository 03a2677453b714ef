package bench

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

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

// TestParseProcStat checks the machine CPU the turn log reads: busy is
// every field of the cpu line but idle and iowait, in 10 ms ticks, and a
// line that is not the cpu line, or a field that is not a count, is
// refused.
func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stat        string
		busy, total time.Duration
		ok          bool
	}{
		{"kernel 5", "cpu  100 5 40 800 20 0 7 3 0 0\ncpu0 50 2 20 400 10 0 3 1 0 0\n", 155 * 10 * time.Millisecond, 975 * 10 * time.Millisecond, true},
		{"old kernel, 5 fields", "cpu 10 0 5 80 5\n", 15 * 10 * time.Millisecond, 100 * 10 * time.Millisecond, true},
		{"not the cpu line", "intr 1 2 3 4 5\n", 0, 0, false},
		{"too short", "cpu 1 2 3\n", 0, 0, false},
		{"not a count", "cpu 1 x 3 4 5\n", 0, 0, false},
	} {
		busy, total, ok := parseProcStat(tc.stat)
		if busy != tc.busy || total != tc.total || ok != tc.ok {
			t.Errorf("%s: busy %v total %v ok %v; want %v %v %v", tc.name, busy, total, ok, tc.busy, tc.total, tc.ok)
		}
	}
	if goruntime.GOOS == "linux" {
		if busy, total, ok := machineCPU(); !ok || total <= 0 || busy > total {
			t.Errorf("machineCPU on Linux: busy %v total %v ok %v", busy, total, ok)
		}
	}
}
