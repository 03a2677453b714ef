package pebble

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestRecycledLogsOfOlderBuild: a store closed with a log kept for reuse
// holding a stream's bytes (by this build, or an older one that recycled
// logs without purging them at hard deletes); once reopened, a hard delete
// of that stream leaves no file holding them.
func TestRecycledLogsOfOlderBuild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	marker := []byte("older-build-personal-data-c41d")
	doomed := runtime.StreamID{Type: "User", ID: "u-1"}
	s := openT(t, dir)
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: doomed, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: "E", Schema: 1, Data: marker}}}); err != nil {
		t.Fatal(err)
	}
	// The flush makes the log obsolete; Pebble keeps it for reuse.
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs := 0
	for _, f := range filesHolding(t, dir, map[string][]byte{"the marker": marker}) {
		if strings.Contains(f, ".log ") {
			logs++
		}
	}
	if logs == 0 {
		t.Fatal("no log file holds the marker before the delete: the test checks nothing")
	}
	s = openT(t, dir)
	if _, err := lifecycle.DeleteStream(ctx, s, doomed, runtime.HardDelete); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := filesHolding(t, dir, map[string][]byte{"the marker": marker}); len(files) > 0 {
		t.Errorf("after the hard delete by this build, files still hold the deleted bytes: %v", files)
	}
}

// recycleWatch counts the logs Pebble creates by reusing a recycled file
// in place (RecycledFileNum set and the file not empty: walFS creates an
// empty one instead of reusing a doomed or removed log).
type recycleWatch struct{ reused atomic.Int32 }

func (w *recycleWatch) option() Option {
	return WithPebbleOptions(func(o *pebbledb.Options) {
		o.EventListener = &pebbledb.EventListener{WALCreated: func(info pebbledb.WALCreateInfo) {
			if fi, err := os.Stat(info.Path); info.RecycledFileNum != 0 && err == nil && fi.Size() > 0 {
				w.reused.Add(1)
			}
		}}
	})
}

// appendMany appends n events of about 1 KB to stream, each holding
// marker, in appends of 10.
func appendMany(t testing.TB, s *Store, stream runtime.StreamID, marker []byte, n int) {
	t.Helper()
	for i := 0; i < n; i += 10 {
		events := make([]runtime.EventData, 10)
		for j := range events {
			events[j] = runtime.EventData{Name: "E", Schema: 1, Data: append(fmt.Appendf(nil, "%d ", i+j), append(marker, bytes.Repeat([]byte{'.'}, 1000)...)...)}
		}
		if _, err := s.Append(context.Background(), runtime.AppendRequest{Stream: stream, Expected: runtime.AnyVersion, Events: events}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHardDeleteWithRecycling: the store recycles write-ahead logs, and
// when a hard delete returns no file of the directory holds the deleted
// stream's bytes, neither a log kept for reuse nor one reused before the
// delete (whose tail can hold older bytes); appends after it reuse or
// create logs as before, and survive a reopen.
func TestHardDeleteWithRecycling(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var w recycleWatch
	s := openT(t, dir, WithMemTableSize(1<<20), w.option())
	doomed, live := runtime.StreamID{Type: "User", ID: "u-1"}, runtime.StreamID{Type: "Live", ID: "1"}
	marker := []byte("recycled-personal-data-5be1")
	for range 3 {
		appendMany(t, s, doomed, marker, 1000)
		appendMany(t, s, live, []byte("live"), 1000)
	}
	if w.reused.Load() == 0 {
		t.Fatal("Pebble reused no log before the delete: recycling is off, the test checks nothing")
	}
	if len(logsHolding(t, dir, marker)) == 0 {
		t.Fatal("no log file holds the marker before the delete: the test checks nothing")
	}
	if _, err := lifecycle.DeleteStream(ctx, s, doomed, runtime.HardDelete); err != nil {
		t.Fatal(err)
	}
	// Logs are removed before the delete returns; the tables the
	// compaction made obsolete are deleted by Pebble moments later.
	if files := logsHolding(t, dir, marker); len(files) > 0 {
		t.Fatalf("when the hard delete returned, logs still held the deleted bytes: %v", files)
	}
	reusedBefore := w.reused.Load()
	appendMany(t, s, live, []byte("live"), 6000)
	if w.reused.Load() == reusedBefore {
		t.Error("Pebble reused no log after the delete: recycling did not resume")
	}
	if files := logsHolding(t, dir, marker); len(files) > 0 {
		t.Fatalf("after later appends, logs hold the deleted bytes: %v", files)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := filesHolding(t, dir, map[string][]byte{"the marker": marker}); len(files) > 0 {
		t.Fatalf("after Close, files hold the deleted bytes: %v", files)
	}
	s = openT(t, dir)
	defer s.Close()
	checkAfterRecycledDelete(t, s, doomed, live, 9000)
	if files := filesHolding(t, dir, map[string][]byte{"the marker": marker}); len(files) > 0 {
		t.Fatalf("after reopening, files hold the deleted bytes: %v", files)
	}
}

// checkAfterRecycledDelete checks that doomed is hard-deleted, live has at
// least minLive events, and the store verifies clean.
func checkAfterRecycledDelete(t *testing.T, s *Store, doomed, live runtime.StreamID, minLive int) {
	t.Helper()
	ctx := context.Background()
	n := 0
	for rec, err := range s.ReadStream(ctx, live, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; rec.Version != uint64(n) {
			t.Fatalf("live stream: record %d is version %d", n, rec.Version)
		}
	}
	if n < minLive {
		t.Errorf("live stream has %d events, want at least %d", n, minLive)
	}
	var recs []runtime.Record
	for rec, err := range s.ReadStream(ctx, doomed, 0) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 1 || !runtime.IsTombstone(recs[0]) {
		t.Errorf("deleted stream reads %d records, want its tombstone only", len(recs))
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify: %s", p)
	}
}

// logsHolding returns the write-ahead logs in dir that hold marker.
func logsHolding(t testing.TB, dir string, marker []byte) []string {
	t.Helper()
	var out []string
	for _, f := range filesHolding(t, dir, map[string][]byte{"the marker": marker}) {
		if strings.Contains(f, ".log ") {
			out = append(out, f)
		}
	}
	return out
}

// recycleChildEnv makes the test binary a child that hard-deletes a
// stream on a store that recycles logs, then appends (see recycleChild).
const recycleChildEnv = "CQRSGEN_PEBBLE_RECYCLE_CHILD"

var (
	recycleDoomed = runtime.StreamID{Type: "User", ID: "u-1"}
	recycleLive   = runtime.StreamID{Type: "Live", ID: "1"}
	recycleMarker = []byte("killed-recycled-personal-data-93d0")
)

// recycleChild writes enough to the doomed and the live stream for Pebble
// to recycle logs holding the doomed one's bytes, hard-deletes it and
// prints "deleted 0", then appends 10 events at a time to the live stream
// and prints "acked N" (N the live stream's version) after each, until it
// is killed. Lines are unbuffered, so a SIGKILL loses no acknowledged one.
func recycleChild(dir string) int {
	s, err := Open(dir, WithLogger(quiet), WithMemTableSize(1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	t := &childTB{}
	for range 3 {
		appendMany(t, s, recycleDoomed, recycleMarker, 1000)
		appendMany(t, s, recycleLive, []byte("live"), 1000)
	}
	if _, err := lifecycle.DeleteStream(context.Background(), s, recycleDoomed, runtime.HardDelete); err != nil {
		fmt.Fprintln(os.Stderr, "child delete:", err)
		return 3
	}
	_, _ = fmt.Fprintln(os.Stdout, "deleted 0")
	for n := 3000 + 10; ; n += 10 {
		appendMany(t, s, recycleLive, []byte("live"), 10)
		_, _ = fmt.Fprintf(os.Stdout, "acked %d\n", n)
	}
}

// childTB lets a child process use helpers that take a testing.TB: a
// failure ends the process.
type childTB struct{ testing.TB }

func (*childTB) Helper() {}
func (*childTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(4)
}

// TestKillAfterRecycledDelete SIGKILLs a child process after it
// hard-deleted a stream on a store that recycles logs: right after the
// delete returned (its logs removed while Pebble still lists them for
// reuse, before the next log is made) or after a random number of later
// appends (while logs are created in place of removed ones, or reused).
// After each kill the store reopens, no file holds the deleted bytes, the
// live stream keeps every acknowledged append, appends work and survive
// another reopen, and the store verifies clean.
func TestKillAfterRecycledDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	rng := rand.New(rand.NewPCG(7, uint64(os.Getpid())))
	for round := range 6 {
		dir := t.TempDir()
		cmd, sc := startChild(t, recycleChildEnv+"="+dir)
		stopAfter := 0 // appends after the delete
		if round%2 == 1 {
			stopAfter = 1 + rng.IntN(500)
		}
		deleted, acked, seen := false, 0, -1
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				t.Fatalf("bad child line %q", sc.Text())
			}
			n, _ := strconv.Atoi(f[1])
			if f[0] == "deleted" {
				deleted = true
			} else {
				acked = n
			}
			if seen++; deleted && seen >= stopAfter {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "acked" {
				acked, _ = strconv.Atoi(f[1])
			}
		}
		_ = cmd.Wait()
		if !deleted {
			t.Fatalf("round %d: the child ended before its delete", round)
		}
		// The delete returned before the kill: its logs are gone already
		// (the tables it made obsolete go once a reopened store's cleaner
		// ran).
		if files := logsHolding(t, dir, recycleMarker); len(files) > 0 {
			t.Fatalf("round %d: after the kill, logs hold the deleted bytes: %v", round, files)
		}
		s := openT(t, dir)
		checkAfterRecycledDelete(t, s, recycleDoomed, recycleLive, max(acked, 3000))
		appendMany(t, s, recycleLive, []byte("live"), 3000)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if files := filesHolding(t, dir, map[string][]byte{"the marker": recycleMarker}); len(files) > 0 {
			t.Fatalf("round %d: after the kill and a reopen, files hold the deleted bytes: %v", round, files)
		}
		s = openT(t, dir)
		checkAfterRecycledDelete(t, s, recycleDoomed, recycleLive, max(acked, 3000)+3000)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed %d appends after the delete; live stream acknowledged through version %d", round, stopAfter, acked)
	}
}
