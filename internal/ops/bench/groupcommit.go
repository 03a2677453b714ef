package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// rawGroupCommit is the write path of the raw Pebble limits: concurrent
// writers' keys merged into one synced commit, as the Pebble store's
// pipeline merges concurrent appends (backends/pebble/pipeline.go), and
// nothing else. A limit in which every writer commits its own pebble.Sync
// batch is not a limit of a store that groups: the store beat it by up to
// 1.8x with 8 writers of 100 events (docs/benchmarks.md, issue 18). What it
// shares with the store's pipeline:
//
//   - a lone writer (nothing queued, nothing syncing, the writer role
//     free) commits its own batch in its own goroutine and waits for its
//     fsync, as Batch.Commit(pebble.Sync) does;
//   - otherwise writes are queued for one writer goroutine, which, while an
//     earlier group waits for its fsync, yields the processor once before
//     it drains the queue (so that the writers just answered can queue
//     theirs into the same group), writes every queued write's records,
//     then their index entries, into one batch and applies it without
//     waiting for the sync (ApplyNoSyncWait);
//   - a syncer goroutine waits for each applied group's fsync in order
//     and answers its writers, while the next group is applied.
//
// What it leaves out: encoding and checksums (values are prepared once),
// version and idempotency checks, the counters key, the yield back-off,
// group size bounds. Positions are consecutive per group, in commit order.
type rawGroupCommit struct {
	db *pebbledb.DB

	wlock sync.Mutex // the writer role; guards pos and kbuf
	pos   uint64     // last position written
	kbuf  []byte

	qmu    sync.Mutex
	queue  []*rawWrite
	closed bool
	wake   chan struct{}

	inflight atomic.Int32 // groups applied and not yet answered
	pipe     chan rawGroup
	done     chan struct{} // closed when the writer and the syncer have exited

	commits, writes atomic.Int64 // synced commits and the writes they held
}

// rawWrite is one writer's request: n events of stream key sk, versions
// from version+1, each record's value value; and, when extraKey is set, one
// more key (a snapshot) in the same batch. Reused by its writer once
// answered.
type rawWrite struct {
	sk         []byte
	version    uint64
	n          int
	value      []byte
	extraKey   []byte
	extraValue []byte

	err  error
	done chan struct{} // buffered; one send per answer
}

func newRawWrite() *rawWrite { return &rawWrite{done: make(chan struct{}, 1)} }

// rawGroup is an applied batch waiting for its fsync.
type rawGroup struct {
	b      *pebbledb.Batch
	writes []*rawWrite
	err    error
}

// newRawGroupCommit starts the writer and syncer goroutines of db's
// limit; close stops them (it does not close db).
func newRawGroupCommit(db *pebbledb.DB) *rawGroupCommit {
	g := &rawGroupCommit{db: db, wake: make(chan struct{}, 1), pipe: make(chan rawGroup, 64), done: make(chan struct{})}
	synced := make(chan struct{})
	go g.syncer(synced)
	go func() {
		g.run()
		close(g.pipe)
		<-synced
		close(g.done)
	}()
	return g
}

// write commits w (see rawGroupCommit) and returns once it is durable.
func (g *rawGroupCommit) write(w *rawWrite) error {
	if g.alone(w) {
		return w.err
	}
	g.qmu.Lock()
	if g.closed {
		g.qmu.Unlock()
		return errors.New("raw group commit: closed")
	}
	g.queue = append(g.queue, w)
	g.qmu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-w.done
	return w.err
}

// alone commits w in the caller's goroutine when no other write is in
// sight, reporting whether it did.
func (g *rawGroupCommit) alone(w *rawWrite) bool {
	if g.inflight.Load() != 0 || !g.wlock.TryLock() {
		return false
	}
	g.qmu.Lock()
	idle := !g.closed && len(g.queue) == 0
	g.qmu.Unlock()
	if !idle || g.inflight.Load() != 0 {
		g.wlock.Unlock()
		return false
	}
	b := g.build([]*rawWrite{w})
	err := g.db.ApplyNoSyncWait(b, pebbledb.Sync)
	g.inflight.Add(1)
	g.wlock.Unlock()
	if err == nil {
		err = b.SyncWait()
	}
	_ = b.Close()
	w.err = err
	g.inflight.Add(-1)
	return true
}

// build writes ws into a new batch: every record first (ascending
// positions, as the store writes them), then every index entry and extra
// key. Called with wlock held.
func (g *rawGroupCommit) build(ws []*rawWrite) *pebbledb.Batch {
	b := g.db.NewBatch()
	first := g.pos
	for _, w := range ws {
		for range w.n {
			g.pos++
			g.kbuf = append(g.kbuf[:0], 'p')
			g.kbuf = binary.BigEndian.AppendUint64(g.kbuf, g.pos)
			_ = b.Set(g.kbuf, w.value, nil)
		}
	}
	pos := first
	var pv [8]byte
	for _, w := range ws {
		for i := range w.n {
			pos++
			g.kbuf = append(g.kbuf[:0], 's')
			g.kbuf = append(g.kbuf, w.sk...)
			g.kbuf = binary.BigEndian.AppendUint64(g.kbuf, w.version+uint64(i)+1)
			binary.BigEndian.PutUint64(pv[:], pos)
			_ = b.Set(g.kbuf, pv[:], nil)
		}
		if w.extraKey != nil {
			_ = b.Set(w.extraKey, w.extraValue, nil)
		}
	}
	g.commits.Add(1)
	g.writes.Add(int64(len(ws)))
	return b
}

// run is the writer goroutine.
func (g *rawGroupCommit) run() {
	for {
		if g.inflight.Load() > 0 {
			goruntime.Gosched() // the store's gather, without its back-off
		}
		g.wlock.Lock()
		g.qmu.Lock()
		ws := g.queue
		g.queue = nil
		closed := g.closed
		g.qmu.Unlock()
		if len(ws) == 0 {
			g.wlock.Unlock()
			if closed {
				return
			}
			<-g.wake
			continue
		}
		b := g.build(ws)
		err := g.db.ApplyNoSyncWait(b, pebbledb.Sync)
		g.inflight.Add(1)
		g.wlock.Unlock()
		g.pipe <- rawGroup{b: b, writes: ws, err: err}
	}
}

// syncer answers applied groups in order once they are durable.
func (g *rawGroupCommit) syncer(done chan<- struct{}) {
	defer close(done)
	for p := range g.pipe {
		err := p.err
		if err == nil {
			err = p.b.SyncWait()
		}
		_ = p.b.Close()
		for _, w := range p.writes {
			w.err = err
			w.done <- struct{}{}
		}
		g.inflight.Add(-1)
	}
}

// close stops the goroutines once every queued write is answered.
func (g *rawGroupCommit) close() {
	g.qmu.Lock()
	g.closed = true
	g.qmu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-g.done
}

// note describes the grouping for a limit row's note.
func (g *rawGroupCommit) note() string {
	c := g.commits.Load()
	if c == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f writes per synced commit", float64(g.writes.Load())/float64(c))
}
