package pebble

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// countSnapGets makes s count the snapshot Gets of LoadSnapshot.
func countSnapGets(s *Store) *atomic.Int64 {
	var n atomic.Int64
	s.snapGet = func() { n.Add(1) }
	return &n
}

// TestSnapSet checks LoadSnapshot's answers through the snapshot set
// after each path that writes or deletes snapshot keys, before and after a
// reopen: every answer equals the Get's (the set forced to "maybe"), and a
// stream the set rules out costs no Get.
func TestSnapSet(t *testing.T) {
	ctx := context.Background()
	a := runtime.StreamID{Type: "T", ID: "a"}
	b := runtime.StreamID{Type: "T", ID: "b"}
	// scoped is what a tenant view writes for its stream a.
	scoped := func(t *testing.T, s *Store) runtime.StreamID {
		t.Helper()
		var got runtime.StreamID
		for r, err := range s.ReadAll(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Stream != a && r.Stream != b {
				got = r.Stream
			}
		}
		if got == (runtime.StreamID{}) {
			t.Fatal("no stream of the tenant in the log")
		}
		return got
	}
	type stream struct {
		id   func(t *testing.T, s *Store) runtime.StreamID
		snap uint64 // the version LoadSnapshot finds; 0: ErrNotFound
	}
	fixed := func(st runtime.StreamID) func(*testing.T, *Store) runtime.StreamID {
		return func(*testing.T, *Store) runtime.StreamID { return st }
	}
	save := func(t *testing.T, s runtime.Store, st runtime.StreamID, v uint64) {
		t.Helper()
		if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: st, Version: v, Schema: "s", Data: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		write   func(t *testing.T, s *Store)
		streams []stream
	}{
		{"none", func(*testing.T, *Store) {}, []stream{{fixed(a), 0}, {fixed(b), 0}}},
		{"saved", func(t *testing.T, s *Store) { save(t, s, a, 2) }, []stream{{fixed(a), 2}, {fixed(b), 0}}},
		{"saved twice", func(t *testing.T, s *Store) { save(t, s, a, 1); save(t, s, a, 3) }, []stream{{fixed(a), 3}, {fixed(b), 0}}},
		{"hard delete", func(t *testing.T, s *Store) {
			save(t, s, a, 2)
			save(t, s, b, 2)
			if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: a, Mode: runtime.HardDelete}); err != nil {
				t.Fatal(err)
			}
		}, []stream{{fixed(a), 0}, {fixed(b), 2}}},
		{"soft delete", func(t *testing.T, s *Store) {
			save(t, s, a, 2)
			if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: a, Mode: runtime.SoftDelete}); err != nil {
				t.Fatal(err)
			}
		}, []stream{{fixed(a), 2}, {fixed(b), 0}}},
		{"truncated log", func(t *testing.T, s *Store) {
			save(t, s, a, 2)
			head, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TruncateLog(ctx, head-1); err != nil {
				t.Fatal(err)
			}
		}, []stream{{fixed(a), 2}, {fixed(b), 0}}},
		{"tenant scope", func(t *testing.T, s *Store) {
			v, err := tenant.Scope(s, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Append(ctx, runtime.AppendRequest{Stream: a, Expected: runtime.NoStream, Events: []runtime.EventData{ev("x")}}); err != nil {
				t.Fatal(err)
			}
			save(t, v, a, 1)
		}, []stream{{scoped, 1}, {fixed(a), 0}, {fixed(b), 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			for _, st := range []runtime.StreamID{a, b} {
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{ev("1"), ev("2")}}); err != nil {
					t.Fatal(err)
				}
			}
			tc.write(t, s)
			check := func(t *testing.T, s *Store, reopened bool) {
				t.Helper()
				gets := countSnapGets(s)
				for _, want := range tc.streams {
					st := want.id(t, s)
					for _, forced := range []bool{false, true} {
						s.snaps.everything = forced
						before := gets.Load()
						snap, err := s.LoadSnapshot(ctx, st)
						switch {
						case want.snap == 0 && !errors.Is(err, runtime.ErrNotFound):
							t.Errorf("%s (set forced %v): LoadSnapshot = %+v, %v; want ErrNotFound", st, forced, snap, err)
						case want.snap != 0 && (err != nil || snap.Version != want.snap):
							t.Errorf("%s (set forced %v): LoadSnapshot = %+v, %v; want version %d", st, forced, snap, err, want.snap)
						}
						got := gets.Load() - before
						// A stream without snapshot costs a Get only when
						// the set is forced, or when its deleted snapshot
						// stays "maybe" until a reopen.
						stale := tc.name == "hard delete" && st == a && !reopened
						if wantGet := forced || want.snap != 0 || stale; (got == 1) != wantGet || got > 1 {
							t.Errorf("%s (set forced %v, reopened %v): %d snapshot Gets; want %v", st, forced, reopened, got, wantGet)
						}
					}
				}
				s.snaps.everything = false
			}
			t.Run("open", func(t *testing.T) { check(t, s, false) })
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir)
			defer s.Close()
			t.Run("reopened", func(t *testing.T) { check(t, s, true) })
		})
	}
}

// TestSnapSetCollision checks that a "maybe" for a stream without a
// snapshot (here its hash put in the set, as a collision would) costs the
// Get and still answers ErrNotFound.
func TestSnapSetCollision(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	st := runtime.StreamID{Type: "T", ID: "collides"}
	gets := countSnapGets(s)
	if _, err := s.LoadSnapshot(ctx, st); !errors.Is(err, runtime.ErrNotFound) || gets.Load() != 0 {
		t.Fatalf("before: %v, %d Gets; want ErrNotFound and no Get", err, gets.Load())
	}
	s.snaps.add(appendStreamKey(nil, st))
	if _, err := s.LoadSnapshot(ctx, st); !errors.Is(err, runtime.ErrNotFound) || gets.Load() != 1 {
		t.Fatalf("after: %v, %d Gets; want ErrNotFound after one Get", err, gets.Load())
	}
}

// TestSnapSetEntries checks the set's answers for hashes that share a
// shard and their low 32 bits: it may say "maybe" for a hash never added,
// never "no" for one that was.
func TestSnapSetEntries(t *testing.T) {
	const lo = 0x3c00_0000_0000_1234 // shard 15, low bits 0x1234
	for _, tc := range []struct {
		name  string
		added []uint64
		maybe []uint64 // the set answers "maybe" (added ones included)
		no    []uint64 // the set answers "no"
	}{
		{"empty", nil, nil, []uint64{lo, 0}},
		{"one", []uint64{lo}, []uint64{lo}, []uint64{lo | 1<<40, lo + 1, lo ^ 1<<63}},
		{"same twice", []uint64{lo, lo}, []uint64{lo}, []uint64{lo | 1<<40}},
		{"low bits shared", []uint64{lo, lo | 1<<40}, []uint64{lo, lo | 1<<40, lo | 1<<41}, []uint64{lo + 1}},
		{"three sharing", []uint64{lo, lo | 1<<40, lo | 1<<41}, []uint64{lo, lo | 1<<40, lo | 1<<41}, []uint64{lo + 1}},
		{"high bits zero", []uint64{0x1234, 1<<32 | 0x1234}, []uint64{0x1234, 1<<32 | 0x1234}, []uint64{2<<32 | 0x1234}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s snapSet
			for i := range s.shards {
				s.shards[i].m = make(map[uint32]uint32)
			}
			for _, h := range tc.added {
				s.addHash(h)
			}
			for _, h := range append(slices.Clone(tc.added), tc.maybe...) {
				if !s.maybeHash(h) {
					t.Errorf("maybeHash(%#x) = false; want true", h)
				}
			}
			for _, h := range tc.no {
				if s.maybeHash(h) {
					t.Errorf("maybeHash(%#x) = true; want false", h)
				}
			}
		})
	}
}

// TestSnapSetConcurrent saves snapshots of one stream from many goroutines
// while others load it: a load that starts after a save returned finds
// that save's version or a later one.
func TestSnapSetConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir(), WithNoSync(time.Millisecond))
	defer s.Close()
	const savers, saves = 4, 50
	streams := []runtime.StreamID{{Type: "T", ID: "hot"}, {Type: "T", ID: "cold"}}
	var saved [2]atomic.Uint64 // the highest version acknowledged per stream
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range savers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range saves {
				k := (g + i) % 2
				v := uint64(i*savers + g + 1)
				if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: streams[k], Version: v, Schema: "s"}); err != nil {
					errs <- err
					return
				}
				for cur := saved[k].Load(); cur < v && !saved[k].CompareAndSwap(cur, v); cur = saved[k].Load() {
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for g := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (g + i) % 2
				floor := saved[k].Load()
				snap, err := s.LoadSnapshot(ctx, streams[k])
				switch {
				case errors.Is(err, runtime.ErrNotFound) && floor == 0:
				case err != nil:
					errs <- fmt.Errorf("load %s after version %d was saved: %w", streams[k], floor, err)
					return
				case snap.Version < floor:
					errs <- fmt.Errorf("load %s: version %d after %d was saved", streams[k], snap.Version, floor)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkSnapSetOpen times Open of a store holding 100,000 snapshots
// (and the set's build alone), and the heap the set holds per snapshotted
// stream:
//
//	go test ./backends/pebble -run '^$' -bench SnapSetOpen -benchtime 5x
func BenchmarkSnapSetOpen(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	s := openT(b, dir, WithNoSync(time.Millisecond))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				st := runtime.StreamID{Type: "Account", ID: fmt.Sprintf("acct-%07d", i)}
				if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: st, Version: 1, Schema: "s", Data: make([]byte, 100)}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Flush(); err != nil { // the set is built from sstables
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var open, build time.Duration
	var perStream float64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		s := openT(b, dir)
		open += time.Since(t0)
		b.StopTimer()
		var set snapSet
		goruntime.GC()
		var m0, m1 goruntime.MemStats
		goruntime.ReadMemStats(&m0)
		t0 = time.Now()
		if err := set.build(s.db, s.ctr.Snapshots); err != nil {
			b.Fatal(err)
		}
		build += time.Since(t0)
		goruntime.GC()
		goruntime.ReadMemStats(&m1)
		perStream = float64(m1.HeapAlloc-m0.HeapAlloc) / n
		if !set.maybe(runtime.StreamID{Type: "Account", ID: "acct-0000042"}) {
			b.Fatal("the built set misses a snapshotted stream")
		}
		goruntime.KeepAlive(&set)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(open.Milliseconds())/float64(b.N), "open-ms")
	b.ReportMetric(float64(build.Microseconds())/1e3/float64(b.N), "build-ms")
	b.ReportMetric(perStream, "heap-B/stream")
}

// BenchmarkSnapSetLoad prices the snapshot set on streams without a
// snapshot, each rung in rotated turns on the same store (runLadder; p50
// per event, so per read at events=1):
//
//	miss      raw Pebble Get of the snapshot key, which finds nothing
//	get       LoadSnapshot with the set forced to "maybe" (the Get, as before the set)
//	set       LoadSnapshot answered by the set
//	visit     VisitStream of the stream (the store's read of its events)
//	load-get  the generated repository's Load with the set forced to "maybe"
//	load      the generated repository's Load
//	memory    the memory store's LoadSnapshot, for comparison
//
//	go test ./backends/pebble -run '^$' -bench SnapSetLoad -benchtime 20000x
func BenchmarkSnapSetLoad(b *testing.B) {
	for _, size := range []int{1, 10} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s, streams := readStoreOf(b, account.AccountStreamType, size, 1000/size)
			defer s.Close()
			ctx := context.Background()
			repo := account.NewAccountRepository(s)
			mem := memory.New()
			defer mem.Close()
			forced := func(f func(runtime.StreamID) (int, error)) func(runtime.StreamID) (int, error) {
				return func(st runtime.StreamID) (int, error) {
					s.snaps.everything = true
					defer func() { s.snaps.everything = false }()
					return f(st)
				}
			}
			snapshot := func(st runtime.StreamID) (int, error) {
				if _, err := s.LoadSnapshot(ctx, st); !errors.Is(err, runtime.ErrNotFound) {
					return 0, err
				}
				return size, nil
			}
			load := func(st runtime.StreamID) (int, error) {
				a, v, err := repo.Load(ctx, st.ID)
				if err == nil && a.Deposits != size {
					err = fmt.Errorf("loaded %d deposits", a.Deposits)
				}
				return int(v), err
			}
			runLadder(b, streams, size, []ladderRung{
				{"miss", func(st runtime.StreamID) (int, error) {
					if _, c, err := s.db.Get(snapshotKey(st)); !errors.Is(err, pebbledb.ErrNotFound) {
						if err == nil {
							err = c.Close()
						}
						return 0, fmt.Errorf("snapshot Get: %v", err)
					}
					return size, nil
				}},
				{"get", forced(snapshot)},
				{"set", snapshot},
				{"visit", func(st runtime.StreamID) (int, error) {
					n := 0
					err := s.VisitStream(ctx, st, 0, func(*runtime.EventView) error { n++; return nil })
					return n, err
				}},
				{"load-get", forced(load)},
				{"load", load},
				{"memory", func(st runtime.StreamID) (int, error) {
					if _, err := mem.LoadSnapshot(ctx, st); !errors.Is(err, runtime.ErrNotFound) {
						return 0, err
					}
					return size, nil
				}},
			})
		})
	}
}
