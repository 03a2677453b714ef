package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
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

func isWAL(op errorfs.Op) bool   { return strings.HasSuffix(op.Path, ".log") }
func isTable(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".sst") }

func isSync(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
}

func isWrite(op errorfs.Op) bool {
	return op.Kind.ReadOrWrite() == errorfs.OpIsWrite
}

// faultAck is an append the store acknowledged.
type faultAck struct {
	stream runtime.StreamID
	res    runtime.AppendResult
	tags   []string
}

// faultRun appends from several goroutines until each has seen an error
// or done `after` appends once the fault is on. It returns the
// acknowledged appends and the errors. It fails the test if an append that
// started after another append had failed is acknowledged: once the store
// has reported a failed write or sync it must not acknowledge anything
// (fsync errors are not retryable: the data they covered may be gone).
func faultRun(t *testing.T, s *Store, inj *faultInjector, prefix string, before, after int) ([]faultAck, []error) {
	t.Helper()
	var (
		mu     sync.Mutex
		acks   []faultAck
		errs   []error
		failed atomic.Bool
		ackCnt atomic.Int64
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			own := runtime.StreamID{Type: "F", ID: fmt.Sprintf("%s-w%d", prefix, w)}
			shared := runtime.StreamID{Type: "F", ID: prefix + "-shared"}
			var ver uint64
			sinceOn := 0
			for n := 0; ; n++ {
				if ackCnt.Load() >= int64(before) {
					inj.on.Store(true)
				}
				on := inj.on.Load()
				if on {
					if sinceOn++; sinceOn > after {
						return
					}
				}
				st, exp := own, ver
				if n%3 == 2 {
					st, exp = shared, runtime.AnyVersion
				}
				size := 1 + n%4
				evs := make([]runtime.EventData, size)
				tags := make([]string, size)
				for i := range evs {
					tags[i] = fmt.Sprintf("%s-w%d-n%d/%d/%d", prefix, w, n, i, size)
					evs[i] = runtime.EventData{Name: "E", Data: []byte(tags[i])}
				}
				wasFailed := failed.Load()
				res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: exp, Events: evs})
				if err != nil {
					failed.Store(true)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if wasFailed {
					t.Errorf("append %s acknowledged after another append had failed", tags[0])
				}
				if st == own {
					ver = res.LastVersion
				}
				ackCnt.Add(1)
				mu.Lock()
				acks = append(acks, faultAck{stream: st, res: res, tags: tags})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acks, errs
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

// TestFaultDuringAppends injects write errors, fsync errors and a full
// disk into the WAL while many goroutines append. The store must report
// the error to the caller, acknowledge nothing after it, refuse further
// calls (ErrFailed), and reopen consistent both from everything written
// and from only what was synced (a crash right after the failure):
// everything acknowledged present, nothing unacknowledged half-present.
func TestFaultDuringAppends(t *testing.T) {
	tests := []struct {
		name  string
		match func(errorfs.Op) bool
		err   error
	}{
		{"WAL fsync error", func(op errorfs.Op) bool { return isWAL(op) && isSync(op) }, syscall.EIO},
		{"WAL write error", func(op errorfs.Op) bool { return isWAL(op) && isWrite(op) && !isSync(op) }, syscall.EIO},
		{"disk full", func(op errorfs.Op) bool { return isWrite(op) && !isSync(op) }, syscall.ENOSPC},
		{"disk full on the WAL", func(op errorfs.Op) bool { return isWAL(op) && isWrite(op) }, syscall.ENOSPC},
	}
	for _, tc := range tests {
		for _, keep := range []int{0, 100} { // percent of unsynced data the crash keeps
			t.Run(fmt.Sprintf("%s/keep %d%%", tc.name, keep), func(t *testing.T) {
				mem := vfs.NewCrashableMem()
				inj := &faultInjector{match: tc.match, err: tc.err}
				s, err := Open("/db", WithFS(errorfs.Wrap(mem, inj)), WithLogger(faultLog), WithCacheSize(1<<20))
				if err != nil {
					t.Fatal(err)
				}
				acks, errs := faultRun(t, s, inj, "f", 40, 50)
				if inj.hits.Load() == 0 {
					t.Fatalf("the fault was never hit (%d acks)", len(acks))
				}
				if len(errs) == 0 {
					t.Fatalf("%d faults injected, %d appends acknowledged, no append failed", inj.hits.Load(), len(acks))
				}
				for _, err := range errs {
					if !errors.Is(err, tc.err) && !errors.Is(err, ErrFailed) {
						t.Errorf("append failed with %v, want an error wrapping %v or ErrFailed", err, tc.err)
					}
				}
				// The store is failed: later calls are refused, not acknowledged.
				_, err = s.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "F", ID: "late"},
					Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "E", Data: []byte("late/0/1")}}})
				if !errors.Is(err, ErrFailed) {
					t.Errorf("append after the failure: %v, want ErrFailed", err)
				}
				crash := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: keep, RNG: rand.New(rand.NewPCG(uint64(keep), 7))})
				_ = s.Close() // may report the failure; it must not hang or panic
				inj.on.Store(false)

				s2, err := Open("/db", WithFS(crash), WithLogger(faultLog))
				if err != nil {
					t.Fatalf("reopen after %s: %v", tc.name, err)
				}
				defer s2.Close()
				n := faultVerify(t, s2, acks)
				t.Logf("%d faults injected, %d appends acknowledged, %d failed; reopened with %d events", inj.hits.Load(), len(acks), len(errs), n)
				// The reopened store works.
				if _, err := s2.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "F", ID: "after"},
					Events: []runtime.EventData{{Name: "E", Data: []byte("after/0/1")}}}); err != nil {
					t.Fatalf("append after reopening: %v", err)
				}
			})
		}
	}
}

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
