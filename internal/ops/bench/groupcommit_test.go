package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"maps"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// dumpEvents returns the event records ('p' keys: value length) and stream
// index entries ('s' keys: value) of the closed Pebble database in dir.
func dumpEvents(t *testing.T, dir string) (records map[string]int, index map[string]string) {
	t.Helper()
	db, err := openPebbleDir(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	records, index = map[string]int{}, map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		switch it.Key()[0] {
		case 'p':
			records[string(it.Key())] = len(it.Value())
		case 's':
			index[string(it.Key())] = string(it.Value())
		}
	}
	return records, index
}

// TestRawPebbleAppendWritesTheStoresKeys checks that the append limit
// writes the keys the Pebble store writes for the same appends, and values
// at least as long (the store's record may be one byte shorter: its time's
// nanoseconds take 4 or 5 bytes).
func TestRawPebbleAppendWritesTheStoresKeys(t *testing.T) {
	ctx := context.Background()
	const batch, appends = 3, 2
	storeDir := t.TempDir()
	s, err := pebble.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	stream := runtime.StreamID{Type: streamType, ID: "writer-0"}
	for a := range appends {
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: stream, Expected: uint64(a * batch), Events: sampleBatch(batch)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	rawDir := t.TempDir()
	db, err := openPebbleDir(rawDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g := newRawGroupCommit(db)
	w := rawAppendWrites(1, batch)[0]
	for range appends {
		if err := g.write(w); err != nil {
			t.Fatal(err)
		}
		w.version += batch
	}
	g.close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	storeRecs, storeIdx := dumpEvents(t, storeDir)
	rawRecs, rawIdx := dumpEvents(t, rawDir)
	if len(storeRecs) != batch*appends || len(storeIdx) != batch*appends {
		t.Fatalf("store wrote %d records and %d index entries, want %d", len(storeRecs), len(storeIdx), batch*appends)
	}
	if !mapsEqualKeys(storeRecs, rawRecs) {
		t.Errorf("record keys: store %q, limit %q", slices.Sorted(maps.Keys(storeRecs)), slices.Sorted(maps.Keys(rawRecs)))
	}
	for k, n := range storeRecs {
		if d := rawRecs[k] - n; d < 0 || d > 1 {
			t.Errorf("record %x: store %d bytes, limit %d", k, n, rawRecs[k])
		}
	}
	if fmt.Sprint(storeIdx) != fmt.Sprint(rawIdx) {
		t.Errorf("index entries differ:\nstore %q\nlimit %q", storeIdx, rawIdx)
	}
}

// TestRawGroupCommitWritesEveryWrite runs concurrent writers through one
// rawGroupCommit and checks that every write landed whole: consecutive
// positions from 1, each record indexed once, each stream's versions
// complete.
func TestRawGroupCommitWritesEveryWrite(t *testing.T) {
	const writers, writes, batch = 8, 40, 3
	dir := t.TempDir()
	db, err := openPebbleDir(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g := newRawGroupCommit(db)
	ws := rawAppendWrites(writers, batch)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range writes {
				if err := g.write(ws[w]); err != nil {
					errs[w] = err
					return
				}
				ws[w].version += batch
			}
		}()
	}
	wg.Wait()
	g.close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c, n := g.commits.Load(), g.writes.Load(); n != writers*writes || c < 1 || c > n {
		t.Errorf("%d writes in %d commits, want %d writes", n, c, writers*writes)
	}
	recs, idx := dumpEvents(t, dir)
	const total = writers * writes * batch
	if len(recs) != total || len(idx) != total {
		t.Fatalf("%d records, %d index entries, want %d each", len(recs), len(idx), total)
	}
	var positions []uint64
	for k, v := range idx {
		positions = append(positions, binary.BigEndian.Uint64([]byte(v)))
		if _, ok := recs["p"+v]; !ok {
			t.Errorf("index entry %x points at no record", k)
		}
	}
	slices.Sort(positions)
	for i, p := range positions {
		if p != uint64(i+1) {
			t.Fatalf("positions %v..., want 1..%d each once", positions[:i+1], total)
		}
	}
	for w := range writers {
		sk := streamKeyOf(runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)})
		for v := uint64(1); v <= writes*batch; v++ {
			k := binary.BigEndian.AppendUint64(append([]byte{'s'}, sk...), v)
			if _, ok := idx[string(k)]; !ok {
				t.Errorf("writer %d: version %d not indexed", w, v)
			}
		}
	}
	// One writer's versions occupy consecutive positions (its batch is
	// written whole into one group).
	sk := streamKeyOf(runtime.StreamID{Type: streamType, ID: "writer-0"})
	first := idx[string(binary.BigEndian.AppendUint64(append([]byte{'s'}, sk...), 1))]
	last := idx[string(binary.BigEndian.AppendUint64(append([]byte{'s'}, sk...), batch))]
	if binary.BigEndian.Uint64([]byte(last))-binary.BigEndian.Uint64([]byte(first)) != batch-1 {
		t.Errorf("writer 0's first batch at positions %x..%x, want consecutive", first, last)
	}
}

// TestRawMemoryKeepsEveryBody checks the memory limit's log and index.
func TestRawMemoryKeepsEveryBody(t *testing.T) {
	m := newRawMemory()
	var w rawMemoryWriter
	big := bytes.Repeat([]byte{7}, rawMemoryArena+1)
	var want [][]byte
	for i := range 600 {
		b := fmt.Appendf(nil, "body-%d", i)
		if i == 300 {
			b = big
		}
		want = append(want, b)
		if n := m.append(&w, fmt.Sprintf("s%d", i%3), [][]byte{b}); n != i/3+1 {
			t.Fatalf("append %d: stream length %d, want %d", i, n, i/3+1)
		}
	}
	for i, b := range want {
		if got := rawBody(m, uint64(i+1)); !bytes.Equal(got, b) {
			t.Fatalf("position %d holds %q, want %q", i+1, got, b)
		}
	}
	if got := *m.streams["s1"]; len(got) != 200 || got[0] != 2 || got[199] != 599 {
		t.Errorf("stream s1 positions %v...", got[:3])
	}
}

func mapsEqualKeys[A, B any](a map[string]A, b map[string]B) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// rawBody returns the body at position pos (from 1) of m.
func rawBody(m *rawMemory, pos uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chunks[(pos-1)/rawMemoryChunk][(pos-1)%rawMemoryChunk]
}

// TestRawMemoryOfCopiesTheStore checks that the memory load limit reads
// the store's own bodies and snapshots, stream by stream.
func TestRawMemoryOfCopiesTheStore(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	for i, n := range []int{3, 5} {
		st := runtime.StreamID{Type: streamType, ID: fmt.Sprintf("agg-%d", i)}
		evs := sampleBatch(n)
		for k := range evs {
			evs[k].Data = fmt.Appendf(nil, "%s/%d", st.ID, k)
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	snap := runtime.Snapshot{Stream: runtime.StreamID{Type: streamType, ID: "agg-1"}, Version: 5, Data: []byte("state")}
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	m, snaps, err := rawMemoryOf(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{3, 5} {
		id := fmt.Sprintf("agg-%d", i)
		positions := *m.streams[id]
		if len(positions) != n {
			t.Fatalf("%s: %d positions, want %d", id, len(positions), n)
		}
		for k, p := range positions {
			if got, want := string(rawBody(m, p)), fmt.Sprintf("%s/%d", id, k); got != want {
				t.Errorf("%s version %d: body %q, want %q", id, k+1, got, want)
			}
		}
	}
	if len(snaps) != 1 || string(snaps["agg-1"]) != "state" {
		t.Errorf("snapshots %q, want agg-1's", snaps)
	}
	ids := func(i int) string { return fmt.Sprintf("agg-%d", i) }
	if err := rawMemoryLoad(m, snaps, 5, true, 1, func(int) string { return ids(1) })(ctx, 0); err != nil {
		t.Errorf("load with snapshot: %v", err)
	}
	if err := rawMemoryLoad(m, snaps, 3, false, 1, ids)(ctx, 0); err != nil {
		t.Errorf("load: %v", err)
	}
	if err := rawMemoryLoad(m, snaps, 4, false, 1, ids)(ctx, 0); err == nil {
		t.Error("load of 3 events as 4: no error")
	}
}

// TestRawPebbleRecycling checks the two raw Pebble append limits: as
// Pebble ships, the log of a flushed memtable is kept for reuse; with the
// cleaner the store used before 2026-12-06 (noRecycleCleaner), it is not.
func TestRawPebbleRecycling(t *testing.T) {
	for _, tc := range []struct {
		recycle bool
		want    int64 // obsolete logs kept for reuse after a flush
	}{{true, 1}, {false, 0}} {
		t.Run(fmt.Sprintf("recycle=%v", tc.recycle), func(t *testing.T) {
			r := &runner{cfg: Config{Log: io.Discard}, root: t.TempDir()}
			db, closeDB, err := r.openRawPebble(tc.recycle)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDB()
			if err := db.Set([]byte("k"), []byte("v"), pebbledb.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			// Pebble moves a flushed memtable's log to its recycler before
			// Flush returns.
			if got := db.Metrics().WAL.ObsoleteFiles; got != tc.want {
				t.Errorf("obsolete logs kept after a flush: %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRawGrouperMinParallel checks the grouped PostgreSQL limit's rule for
// batches: while a group runs, queued batches start a second group only
// once they hold minParallel events; with minParallel 0 (single events)
// every writer that finds a free slot leads at once.
func TestRawGrouperMinParallel(t *testing.T) {
	for _, tc := range []struct {
		name        string
		minParallel int
		wantBefore  int // groups running once two writers queue behind the first
	}{
		{"batches", 256, 1},
		{"single events", 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var running atomic.Int32
			hold := make(chan struct{})
			started := make(chan struct{}, 8)
			g := &rawGrouper{max: 3, batch: 100, minParallel: tc.minParallel, run: func(reqs []*rawGroupReq, _ bool, _ func()) error {
				running.Add(1)
				started <- struct{}{}
				<-hold
				return nil
			}}
			errs := make(chan error, 4)
			do := func(w int) { errs <- g.do(context.Background(), w) }
			go do(0)
			<-started
			go do(1)
			go do(2)
			if tc.minParallel == 0 {
				<-started
				<-started
			} else {
				// Two batches (200 events) queued: no second group yet.
				for {
					g.mu.Lock()
					n := len(g.queue)
					g.mu.Unlock()
					if n == 2 {
						break
					}
					goruntime.Gosched()
				}
			}
			if got := int(running.Load()); got != tc.wantBefore {
				t.Fatalf("%d groups running with two writers behind the first, want %d", got, tc.wantBefore)
			}
			if tc.minParallel > 0 {
				go do(3) // the third batch queued: 300 events
				<-started
				if got := running.Load(); got != 2 {
					t.Fatalf("%d groups running with 300 events queued, want 2", got)
				}
			}
			close(hold)
			for range 3 + min(tc.minParallel, 1) {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestRawGrouperCommitThenFlush checks the grouped PostgreSQL limit's
// order for batches, the store's: the next group starts at the previous
// group's commit (its run calling committed), beside that group's flush,
// and a group's writers are answered only once its run has returned (its
// flush answered). A group is alone only when one writer is in flight.
func TestRawGrouperCommitThenFlush(t *testing.T) {
	type group struct {
		ws     []int
		alone  bool
		commit chan struct{} // closed: the group's commit is answered
		flush  chan struct{} // closed: its flush is answered
	}
	groups := make(chan *group, 8)
	g := &rawGrouper{max: 2, batch: 100, minParallel: 256, maxEvents: 200, run: func(reqs []*rawGroupReq, alone bool, committed func()) error {
		gr := &group{alone: alone, commit: make(chan struct{}), flush: make(chan struct{})}
		for _, q := range reqs {
			gr.ws = append(gr.ws, q.w)
		}
		groups <- gr
		<-gr.commit
		committed()
		<-gr.flush
		return nil
	}}
	answered := make([]chan error, 5)
	do := func(w int) {
		answered[w] = make(chan error, 1)
		go func() { answered[w] <- g.do(context.Background(), w) }()
	}
	queued := func(n int) { // waits for n batches in the queue
		t.Helper()
		for {
			g.mu.Lock()
			got := len(g.queue)
			g.mu.Unlock()
			if got == n {
				return
			}
			goruntime.Gosched()
		}
	}
	notAnswered := func(ws ...int) {
		t.Helper()
		for _, w := range ws {
			select {
			case err := <-answered[w]:
				t.Fatalf("writer %d answered (%v) before its group's flush", w, err)
			default:
			}
		}
	}
	do(0)
	a := <-groups
	if !slices.Equal(a.ws, []int{0}) || !a.alone {
		t.Fatalf("first group %v alone %v, want [0] alone", a.ws, a.alone)
	}
	// Three batches queue behind the first group: 300 events start a
	// second group beside it, of at most maxEvents (two batches).
	do(1)
	queued(1)
	do(2)
	queued(2)
	do(3)
	b := <-groups
	if len(b.ws) != 2 || b.alone {
		t.Fatalf("second group %v alone %v, want two batches, not alone", b.ws, b.alone)
	}
	queued(1)
	select {
	case gr := <-groups:
		t.Fatalf("group %v started with two groups before their commit", gr.ws)
	default:
	}
	// The first group's commit: the last batch starts the next group
	// while the first waits for its flush, and nobody is answered.
	close(a.commit)
	c := <-groups
	if len(c.ws) != 1 || c.alone {
		t.Fatalf("third group %v alone %v, want one batch, not alone", c.ws, c.alone)
	}
	notAnswered(0, 1, 2, 3)
	close(a.flush)
	if err := <-answered[0]; err != nil {
		t.Fatal(err)
	}
	close(b.commit)
	close(c.commit)
	notAnswered(b.ws...)
	notAnswered(c.ws...)
	close(b.flush)
	close(c.flush)
	for _, w := range []int{1, 2, 3} {
		if err := <-answered[w]; err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight != 0 || len(g.queue) != 0 {
		t.Errorf("after every answer: %d groups in flight, %d queued, want none", g.inFlight, len(g.queue))
	}
}
