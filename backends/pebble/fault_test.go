package pebble

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// faultInjector fails the file-system operations match selects while it
// is on, with err (wrapped in an *os.PathError naming the file).
type faultInjector struct {
	on    atomic.Bool
	hits  atomic.Int64
	match func(errorfs.Op) bool
	err   error
}

func (f *faultInjector) String() string { return "faultInjector" }

func (f *faultInjector) MaybeError(op errorfs.Op) error {
	if !f.on.Load() || !f.match(op) {
		return nil
	}
	f.hits.Add(1)
	return &os.PathError{Op: fmt.Sprint(op.Kind), Path: op.Path, Err: f.err}
}

func isTable(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".sst") }

func isWrite(op errorfs.Op) bool {
	return op.Kind.ReadOrWrite() == errorfs.OpIsWrite
}

// faultAck is an append the store acknowledged.
type faultAck struct {
	stream runtime.StreamID
	res    runtime.AppendResult
	tags   []string
}

// faultVerify checks a reopened store: positions 1..n, versions 1..k per
// stream, every event once, every append whole or absent, every
// acknowledged append present where it was acknowledged.
func faultVerify(t *testing.T, s *Store, acks []faultAck) int {
	t.Helper()
	ctx := context.Background()
	byTag := map[string]runtime.Record{}
	versions := map[runtime.StreamID]uint64{}
	batches := map[string][2]int{}
	var n uint64
	for r, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatalf("read all after position %d: %v", n, err)
		}
		n++
		if r.Position != n {
			t.Fatalf("position %d follows %d: gap or reorder", r.Position, n-1)
		}
		if r.Version != versions[r.Stream]+1 {
			t.Fatalf("%s: version %d follows %d", r.Stream, r.Version, versions[r.Stream])
		}
		versions[r.Stream] = r.Version
		tag := string(r.Data)
		if _, dup := byTag[tag]; dup {
			t.Fatalf("event %q stored twice", tag)
		}
		byTag[tag] = r
		var id string
		var idx, size int
		if _, err := fmt.Sscanf(strings.ReplaceAll(tag, "/", " "), "%s %d %d", &id, &idx, &size); err != nil {
			t.Fatalf("foreign event %q: %v", tag, err)
		}
		b := batches[id]
		b[0]++
		b[1] = size
		batches[id] = b
	}
	for id, b := range batches {
		if b[0] != b[1] {
			t.Fatalf("unacknowledged append %s is half-present: %d of %d events", id, b[0], b[1])
		}
	}
	for _, a := range acks {
		for i, tag := range a.tags {
			r, ok := byTag[tag]
			if !ok {
				t.Fatalf("acknowledged event %q (%s v%d p%d) lost", tag, a.stream, a.res.FirstVersion+uint64(i), a.res.FirstPosition+uint64(i))
			}
			if r.Stream != a.stream || r.Version != a.res.FirstVersion+uint64(i) || r.Position != a.res.FirstPosition+uint64(i) {
				t.Fatalf("event %q acknowledged at %s v%d p%d, stored at %s v%d p%d", tag, a.stream,
					a.res.FirstVersion+uint64(i), a.res.FirstPosition+uint64(i), r.Stream, r.Version, r.Position)
			}
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != n || st.Head != n {
		t.Fatalf("Stats say %d events, head %d; the log holds %d", st.Events, st.Head, n)
	}
	return int(n)
}

var faultLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestFaultDiskFullDuringFlush fills the disk while Pebble flushes a
// memtable to a table file. The WAL still has room, so appends go on
// being acknowledged; once space is back the flush completes, and a crash
// (keeping only synced data) loses none of them.
func TestFaultDiskFullDuringFlush(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewCrashableMem()
	inj := &faultInjector{match: func(op errorfs.Op) bool { return isTable(op) && isWrite(op) }, err: syscall.ENOSPC}
	s, err := Open("/db", WithFS(errorfs.Wrap(mem, inj)), WithLogger(faultLog), WithCacheSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var acks []faultAck
	appendSome := func(prefix string, n int) {
		for i := range n {
			tag := fmt.Sprintf("%s-%d/0/1", prefix, i)
			st := runtime.StreamID{Type: "F", ID: prefix}
			res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion,
				Events: []runtime.EventData{{Name: "E", Data: []byte(tag)}}})
			if err != nil {
				t.Fatalf("append %s with the WAL writable: %v", tag, err)
			}
			acks = append(acks, faultAck{stream: st, res: res, tags: []string{tag}})
		}
	}
	appendSome("before", 50)
	inj.on.Store(true)
	flushed, err := s.db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; inj.hits.Load() == 0; i++ {
		appendSome(fmt.Sprint("during", i), 1)
	}
	appendSome("during-more", 50)
	inj.on.Store(false)
	<-flushed // the retried flush succeeds once there is room again
	appendSome("after", 50)
	crash := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0, RNG: rand.New(rand.NewPCG(1, 1))})
	if err := s.Close(); err != nil {
		t.Fatalf("close after the disk had room again: %v", err)
	}
	s2, err := Open("/db", WithFS(crash), WithLogger(faultLog))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if n := faultVerify(t, s2, acks); n != len(acks) {
		t.Fatalf("reopened with %d events, %d acknowledged", n, len(acks))
	}
	t.Logf("%d table writes failed with ENOSPC during the flush; %d appends acknowledged and recovered", inj.hits.Load(), len(acks))
}
