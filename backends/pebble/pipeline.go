package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// pipeline is the store's write path, embedded in Store. Every mutation
// (append, snapshot, checkpoint, idempotency record, flush) takes it, in
// five steps:
//
//  1. Queue. The caller encodes its records in its own goroutine
//     (getAppendOp), so many appenders encode in parallel, and queues the op
//     (submit). A request that finds nothing queued, nothing syncing and the
//     writer idle skips the queue and plays the writer for itself (alone):
//     a lone appender commits as raw Pebble's Commit(Sync) does, without
//     two hand-offs between goroutines.
//  2. Group. The writer goroutine (run) drains the queue. While an earlier
//     group waits for its fsync it first yields once (gather), so that the
//     appenders just answered can queue their next requests into this group.
//  3. Write. group checks each op against the state the ops before it left
//     (expected version, idempotency key), numbers accepted events with
//     consecutive global positions, writes them, the stream index and the
//     counters into one batch, and applies it without waiting for the WAL
//     sync (commit). A refused op fails alone. Because one goroutine holds
//     the writer role (wlock) from check to apply, positions are gap-free
//     and in commit order.
//  4. Sync. The syncer goroutine waits for each applied group's fsync, in
//     apply order; the next group is applied meanwhile, and Pebble's WAL
//     writer syncs it with, or right after, the earlier one.
//  5. Publish. settle advances the watermarks (acked, then durable: readers
//     never see past durable) and the published counters, then answers the
//     group's callers, refusals included, so a caller hears of a conflict
//     only once what it conflicted with is durable.
//
// Lock order: wlock, then qmu, then wmu. Measured figures behind the
// gathering rules are in docs/benchmarks-history.md.
type pipeline struct {
	// wlock is the writer role: held by the writer goroutine while it
	// applies groups, or by a lone appender serving itself (see alone); it
	// guards w and wclosed.
	wlock   sync.Mutex
	w       *writer
	wclosed bool           // the writer goroutine has exited
	lone    sync.WaitGroup // lone groups applied and not yet settled (see alone)
	// loneApplied, set by tests, runs between applying a lone group and
	// settling it.
	loneApplied func()

	qmu     sync.Mutex
	queue   []*op
	qclosed bool
	wake    chan struct{}
	// inflight counts the groups handed to the syncer and not yet
	// answered.
	inflight atomic.Int32
	enqueued atomic.Int64  // requests ever queued (see writer.gather)
	commits  atomic.Int64  // batches committed since Open
	backoffs atomic.Int64  // gathering back-offs since Open (see writer.gather)
	done     chan struct{} // closed when the writer has exited

	// Published state, guarded by wmu: acked is the last position
	// acknowledged to an appender, durable the last position known synced
	// (equal unless WithNoSync is in effect); ctr holds the counters of
	// acknowledged groups and ctrSeq the pending.seq of the group they come
	// from.
	wmu      sync.Mutex
	acked    uint64
	durable  uint64
	advanced chan struct{} // made by a waiter; closed and cleared whenever durable grows
	closedCh chan struct{}
	ctr      counters
	ctrSeq   uint64
}

type opKind uint8

const (
	opAppend opKind = iota
	opSnapshot
	opCheckpoint
	opIdem
	opFlush
	opFunc   // runs fn as the writer (retention.go)
	opDelete // delete.go
)

// op is one queued mutation and, once answered on done, its answer.
type op struct {
	kind opKind
	ctx  context.Context

	req  runtime.AppendRequest
	snap runtime.Snapshot
	name string
	pos  uint64
	idem runtime.IdempotencyRecord
	fn   func(*writer) error // opFunc
	del  *deleteOp

	// An append's records, encoded by the caller before queueing (see
	// encode): sk is the stream key, enc the record heads back to back,
	// heads where each ends and its checksum. bytes is the payload size
	// that group sizing counts.
	sk    []byte
	enc   []byte
	heads []recordHead
	bytes int

	// now is the append's clock reading, taken by getAppendOp when an
	// event needs it; zero until then (see clock).
	now time.Time

	res  runtime.AppendResult
	err  error
	done chan struct{} // buffered: the writer or syncer sends exactly once
}

// clock returns the append's clock reading, reading now the first time.
func (o *op) clock(now func() time.Time) time.Time {
	if o.now.IsZero() {
		o.now = storekit.NormalizeTime(time.Time{}, now)
	}
	return o.now
}

// recordHead locates one encoded record head in op.enc.
type recordHead struct {
	end int
	crc uint32
}

// answer hands o its result (o.res, o.err). The answering goroutine must
// not touch o afterwards: its caller may reuse it at once.
func (o *op) answer() { o.done <- struct{}{} }

func (o *op) size() int {
	switch o.kind {
	case opAppend:
		return o.bytes
	case opSnapshot:
		return len(o.snap.Data) + len(o.snap.Schema)
	case opDelete:
		return maxGroupBytes + 1 // a group of its own (see writer.delete)
	}
	return 64
}

// describe names the operation for error messages.
func (o *op) describe() string {
	switch o.kind {
	case opAppend:
		return "append to " + o.req.Stream.String()
	case opSnapshot:
		return "save snapshot of " + o.snap.Stream.String()
	case opCheckpoint:
		return fmt.Sprintf("save checkpoint %q", o.name)
	case opIdem:
		return fmt.Sprintf("save idempotency key %q", o.idem.Key)
	case opFunc:
		return opNames[opFunc]
	}
	return "flush"
}

// appendOps recycles append ops and their encoding buffers.
var appendOps = sync.Pool{New: func() any { return &op{kind: opAppend, done: make(chan struct{}, 1)} }}

// maxPooledBytes bounds the encoding buffer an op keeps when recycled.
const maxPooledBytes = 64 << 10

// getAppendOp returns an append op for req with req's records encoded:
// this runs in the caller's goroutine, so many appenders encode in
// parallel and the writer only checks, numbers and copies.
func getAppendOp(ctx context.Context, req runtime.AppendRequest, now func() time.Time) *op {
	o := appendOps.Get().(*op)
	o.ctx, o.req = ctx, req
	o.sk = appendStreamKey(o.sk[:0], req.Stream)
	o.enc, o.heads = o.enc[:0], o.heads[:0]
	// One clock reading per append: it stamps every event without a time
	// of its own and the idempotency record (see writer.append).
	stamp := storekit.NewStamp(req, now)
	o.now = time.Time{}
	if req.IdempotencyKey != "" {
		o.now = stamp.Now() // already read by NewStamp: the record needs it
	}
	var keys []string
	var keyBuf [8]string
	for i := range req.Events {
		e := &req.Events[i]
		keys = keyBuf[:0]
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		id, t := stamp.Event(i)
		if id != e.ID {
			// A copy: the caller's events are not ours to change.
			withID := *e
			withID.ID = id
			e = &withID
		}
		var crc uint32
		o.enc, crc = appendRecordHead(o.enc, req.Stream, e, t, keys)
		o.heads = append(o.heads, recordHead{end: len(o.enc), crc: crc})
	}
	o.bytes = len(o.enc) + len(req.Events)*(2*recordTailLen+len(o.sk))
	return o
}

// putAppendOp recycles o once its caller has read the answer.
func putAppendOp(o *op) {
	o.ctx, o.req, o.res, o.err = nil, runtime.AppendRequest{}, runtime.AppendResult{}, nil
	if cap(o.enc) > maxPooledBytes {
		o.enc = nil
	}
	if cap(o.heads) > maxPooledBytes/64 {
		o.heads = nil
	}
	appendOps.Put(o)
}

// submit queues o for the writer and waits for its answer.
func (s *Store) submit(o *op) error {
	if o.ctx.Err() != nil {
		return storekit.ContextErr(o.ctx, o.describe())
	}
	if err := s.failure(); err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", o.describe(), err)
	}
	if o.done == nil {
		o.done = make(chan struct{}, 1)
	}
	if s.alone(o) {
		<-o.done
		return o.err
	}
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		return fmt.Errorf("cqrsgen/pebble: %s: %w", o.describe(), runtime.ErrClosed)
	}
	s.queue = append(s.queue, o)
	s.qmu.Unlock()
	s.enqueued.Add(1)
	s.signal()
	<-o.done
	return o.err
}

// alone serves o in the caller's goroutine when it is the only request in
// sight: nothing queued, no group syncing and the writer idle. It checks
// and applies o as a group of its own, then waits for its fsync and answers
// it, reporting whether it did. A lone appender so commits as raw Pebble's
// Commit(Sync) does, without the two hand-offs (to the writer, then to the
// syncer) and the wake-ups of idle threads they cost.
//
// The writer role is released as soon as o is applied: requests that
// arrive during its fsync are gathered and applied by the writer
// meanwhile, so that Pebble has them in the WAL when the fsync ends. A lone
// group counts as in flight until settled, and settle keeps watermarks and
// counters monotonic, so a later group that the syncer settles first
// publishes both. Its fsync covers the lone one: Pebble writes batches to
// the WAL in commit order, and before it switches to a new WAL file it
// syncs and closes the old one.
func (s *Store) alone(o *op) bool {
	if s.opts.noSync || s.inflight.Load() != 0 || !s.wlock.TryLock() {
		return false
	}
	s.qmu.Lock()
	idle := !s.qclosed && len(s.queue) == 0
	s.qmu.Unlock()
	if s.wclosed || !idle || s.inflight.Load() != 0 {
		s.wlock.Unlock()
		return false
	}
	p := s.w.group([]*op{o})
	if p == nil {
		s.wlock.Unlock()
		return true
	}
	s.inflight.Add(1)
	s.lone.Add(1)
	s.wlock.Unlock()
	if s.loneApplied != nil {
		s.loneApplied()
	}
	s.settle(p)
	s.lone.Done()
	s.inflight.Add(-1)
	return true
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine. It holds s.wlock while it applies groups
// (see alone).
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.noSync && s.opts.syncEvery > 0 {
		t := time.NewTicker(s.opts.syncEvery)
		defer t.Stop()
		tick = t.C
	}
	w := s.w
	synced := make(chan struct{})
	go s.syncer(w.pipe, synced)
	defer func() {
		s.lone.Wait()
		close(w.pipe)
		<-synced
		if w.batch != nil {
			_ = w.batch.Close()
		}
	}()
	var spare []*op // the previous queue slice, handed back for reuse
	// The writer starts parked: nothing can be queued before Open returns,
	// and a writer that took the role to find an empty queue would turn
	// the first lone appender (see alone) away to the queue.
	parked := true
	for {
		if parked {
			select {
			case <-s.wake:
			case <-tick:
				s.wlock.Lock()
				if w.pos != s.durableNow() {
					w.hand(w.commit(nil, true))
				}
				s.wlock.Unlock()
				continue
			}
			parked = false
		}
		if s.inflight.Load() > 0 {
			w.gather()
		}
		s.wlock.Lock()
		s.qmu.Lock()
		ops := s.queue
		s.queue, spare = spare, nil
		closing := s.qclosed
		s.qmu.Unlock()
		if len(ops) == 0 {
			spare = ops
			if closing {
				if s.opts.noSync {
					w.hand(w.commit(nil, true))
				}
				s.wclosed = true
				s.wlock.Unlock()
				return
			}
			s.wlock.Unlock()
			parked = true
			continue
		}
		for rest := ops; len(rest) > 0; {
			n, bytes := 0, 0
			for n < len(rest) && (n == 0 || bytes+rest[n].size() <= maxGroupBytes) {
				bytes += rest[n].size()
				n++
			}
			if p := w.group(rest[:n]); p != nil {
				w.hand(p)
			}
			rest = rest[n:]
		}
		s.wlock.Unlock()
		clear(ops)
		spare = ops[:0]
	}
}

func (s *Store) durableNow() uint64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.durable
}

// Gathering (see writer.gather) backs off when yielding stops paying: a
// yield that lasts longer than yieldSlow, brings fewer than one request per
// yieldPerRequest and leaves the process's CPU time growing is a strike (the
// processors went to the process's own other work). After yieldStrikes
// strikes in a row the writer stops yielding for yieldBackoffMin, doubling
// with each further strike up to yieldBackoffMax, until a fast yield. One
// strike is not enough: a garbage collection or a memtable flush makes a
// single yield slow, and backing off for it costs far more gathering than
// it saves. The measurements behind these values are in
// docs/benchmarks-history.md ("Pebble store").
const (
	yieldSlow       = 2 * time.Millisecond
	yieldPerRequest = 100 * time.Microsecond
	yieldBackoffMin = 50 * time.Millisecond
	yieldBackoffMax = 5 * time.Second
	yieldStrikes    = 3
)

// gather is called while a group waits for its fsync, before the writer
// drains the queue: a request taken now waits for the next fsync anyway,
// so it first yields the processor once, letting the appenders that are
// ready to run (typically those the syncer has just answered) queue their
// next requests, and then takes them all as one group. Taken one by one as
// they arrive, each would pay a commit, a counters key and a hand-off of
// its own.
//
// runtime.Gosched puts the writer behind every runnable goroutine, so in a
// process whose other goroutines keep the processors busy a yield can last
// a scheduler time slice or more: hence the back-off (see yieldSlow).
func (w *writer) gather() {
	s := w.s
	now := time.Now()
	if now.Before(w.yieldOff) {
		return
	}
	before, cpu := s.enqueued.Load(), processCPU()
	w.yields++
	goruntime.Gosched()
	d := time.Since(now)
	if d > yieldSlow && time.Duration(s.enqueued.Load()-before)*yieldPerRequest < d {
		// Slow and unproductive. If this process kept at least half a
		// processor busy meanwhile, its own goroutines took the yield:
		// back off. If not, the process itself was kept off the
		// processors (another process, the hypervisor), which stopping
		// the yields would not help.
		if used := processCPU() - cpu; cpu < 0 || used >= d/2 {
			// One such yield may be a garbage collection or a Pebble
			// flush passing by; a few in a row are a lasting load. Once
			// backed off, one is enough until a fast yield.
			if w.strikes++; w.backoff > 0 || w.strikes >= yieldStrikes {
				w.backoff = min(max(2*w.backoff, yieldBackoffMin), yieldBackoffMax)
				w.yieldOff = now.Add(d + w.backoff)
				w.strikes = 0
				s.backoffs.Add(1)
			}
			return
		}
	}
	w.strikes = 0
	if w.backoff > 0 && d <= yieldSlow {
		w.backoff = 0
	}
}

// writer holds the writer goroutine's scratch state.
type writer struct {
	s *Store
	// batch is the group being written; nil after a synced commit hands it
	// to the syncer, until the next group (see newBatch).
	batch *pebbledb.Batch

	// The group's stream index entries (key then 8-byte value, back to
	// back, with each key's length), added to the batch by flushIndex.
	idx        []byte
	idxKeyLens []int

	// Applied state: what the committed (possibly not yet synced) groups
	// and the current group's earlier requests left behind; the next
	// request is checked against it. A failed commit clears heads.
	heads  map[string]*headEntry // stream key → version (a cache)
	pos    uint64                // last applied position
	ctr    counters              // applied counters
	seq    uint64                // groups applied (see pending.seq)
	ctrBuf []byte                // the encoded counters (see commit)
	pipe   chan *pending         // applied groups, in order, to the syncer

	yields   int           // gathering yields so far
	yieldOff time.Time     // no gathering yields before this (see gather)
	backoff  time.Duration // the last back-off, doubled while yields stay slow
	strikes  int           // slow, unproductive yields in a row (see yieldStrikes)

	// per group
	newIdem map[string]runtime.IdempotencyRecord
	// expiredIdem holds the keys whose expired record lookupIdem met in
	// this group: recording them again replaces it (retention.go).
	expiredIdem map[string]bool
	purgedIdem  map[string]bool // keys PurgeExpiredKeys deleted in this group
	removed     bool            // a hard delete removed event records (see TruncateLog)
	snapVers    map[string]uint64
	newCkpt     map[string]bool
	accepted    []*op
	// rejected are the group's requests refused by a check (conflict,
	// duplicate key). They are answered by the syncer after every earlier
	// group, so that what they were checked against — the Actual of a
	// ConflictError, the first record of a DuplicateError — is visible to
	// readers when the caller hears of it.
	rejected  []*op
	needsSync bool
}

// group checks, writes and commits ops as one batch, returning what is left
// to answer once the batch is durable (nil if ops are all answered).
func (w *writer) group(ops []*op) *pending {
	s := w.s
	if err := s.failure(); err != nil {
		for _, o := range ops {
			o.err = err
			o.answer()
		}
		return nil
	}
	w.newBatch()
	w.newIdem = nil
	w.expiredIdem, w.purgedIdem = nil, nil
	w.snapVers = nil
	w.newCkpt = nil
	groupPos, groupCtr := w.pos, w.ctr
	w.accepted, w.rejected = nil, nil
	w.needsSync = !s.opts.noSync
	flush := false
	for _, o := range ops {
		if err := storekit.ContextErr(o.ctx, opNames[o.kind]); err != nil {
			o.err = err
			o.answer()
			continue
		}
		var err error
		switch o.kind {
		case opAppend:
			err = w.append(o)
		case opSnapshot:
			err = w.snapshot(o)
		case opCheckpoint:
			err = w.checkpoint(o)
		case opIdem:
			err = w.saveIdem(o)
		case opFlush:
			w.needsSync, flush = true, true
		case opFunc:
			err = o.fn(w)
		case opDelete:
			err = w.delete(o)
			if err == nil && (o.del.req.DryRun || o.del.res.Already) {
				// Nothing to write: answered in order, like a refusal.
				w.rejected = append(w.rejected, o)
				continue
			}
		}
		if err != nil {
			o.err = err
			w.rejected = append(w.rejected, o)
			continue
		}
		w.accepted = append(w.accepted, o)
	}
	if len(w.accepted) == 0 && !flush {
		w.pos, w.ctr = groupPos, groupCtr
		if len(w.rejected) > 0 {
			// Nothing to write: answer the refusals in order behind the
			// groups still syncing.
			w.seq++
			return &pending{ops: w.rejected, pos: w.pos, ctr: w.ctr, seq: w.seq, sync: w.needsSync}
		}
		return nil
	}
	return w.commit(append(w.accepted, w.rejected...), w.needsSync)
}

// pending is an applied group waiting for its answer.
type pending struct {
	batch *pebbledb.Batch // nil unless waiting for a sync
	ops   []*op
	err   error
	pos   uint64
	ctr   counters
	seq   uint64 // applied groups before this one, this one included
	sync  bool
}

var opNames = [...]string{opAppend: "append", opSnapshot: "save snapshot", opCheckpoint: "save checkpoint", opIdem: "save idempotency record", opFlush: "flush", opFunc: "retention", opDelete: "delete stream"}

// commit writes the counters and applies the batch, returning the group
// for the syncer (see hand), which answers ops once the batch is durable
// (or at once with WithNoSync). Applying the next group does not wait for
// this one's fsync: Pebble syncs the WAL in order, so the syncer answers
// groups in order and a later group's sync covers every earlier one.
func (w *writer) commit(ops []*op, sync bool) *pending {
	s := w.s
	w.newBatch()
	w.flushIndex()
	w.ctrBuf = encodeCountersInto(w.ctrBuf, w.ctr)
	_ = w.batch.Set(keyCounters, w.ctrBuf, nil)
	w.seq++
	p := &pending{ops: ops, pos: w.pos, ctr: w.ctr, seq: w.seq, sync: sync}
	var err error
	if sync {
		err = s.db.ApplyNoSyncWait(w.batch, pebbledb.Sync)
		if err == nil {
			// The next batch is made when needed (see writer.batch):
			// a lone appender blocks in SyncWait sooner, which lets
			// Pebble's WAL writer start the fsync sooner.
			p.batch, w.batch = w.batch, nil
		}
	} else {
		err = w.batch.Commit(pebbledb.NoSync)
	}
	if err == nil {
		err = s.failure()
	}
	if w.removed {
		// Counted once applied, so that a TruncateLog that counted
		// before sees it (retention.go).
		s.retention.deletes.Add(1)
		w.removed = false
	}
	if w.batch != nil {
		if w.batch.Len() > 4<<20 || err != nil {
			_ = w.batch.Close()
			w.batch = s.db.NewBatch()
		} else {
			w.batch.Reset()
		}
	}
	if err != nil {
		p.err = err
		// The applied state is unknown: forget the cache.
		clear(w.heads)
	} else {
		// Entries are only dropped once their group is applied: a miss
		// then reads the stream head back from the database.
		if len(w.heads) > maxCachedHeads {
			n := 0
			for k := range w.heads { // drop an arbitrary tenth
				delete(w.heads, k)
				if n++; n > maxCachedHeads/10 {
					break
				}
			}
		}
	}
	s.commits.Add(1)
	return p
}

// newBatch makes the batch of the next group if there is none.
func (w *writer) newBatch() {
	if w.batch == nil {
		w.batch = w.s.db.NewBatch()
	}
}

// hand passes an applied group to the syncer.
func (w *writer) hand(p *pending) {
	w.s.inflight.Add(1)
	w.pipe <- p
}

// flushIndex adds the group's stream index entries to the batch, after
// all of its event records. Pebble inserts a batch into the memtable in
// batch order, reusing the search path of the previous key: the records'
// position keys are ascending and all land at the end of the 'p' range, so
// keeping them together (instead of alternating with index keys that land
// elsewhere) makes most of those inserts nearly free.
func (w *writer) flushIndex() {
	off := 0
	for _, kl := range w.idxKeyLens {
		d := w.batch.SetDeferred(kl, 8)
		copy(d.Key, w.idx[off:off+kl])
		copy(d.Value, w.idx[off+kl:off+kl+8])
		_ = d.Finish()
		off += kl + 8
	}
	w.idx, w.idxKeyLens = w.idx[:0], w.idxKeyLens[:0]
	if cap(w.idx) > maxPooledBytes {
		w.idx, w.idxKeyLens = nil, nil
	}
}

// syncer answers applied groups in order once they are durable.
func (s *Store) syncer(in <-chan *pending, done chan<- struct{}) {
	defer close(done)
	for p := range in {
		if p.batch == nil && p.sync {
			// No fsync of its own to wait for: a lone group applied
			// before this one may still be syncing (see alone), and what
			// this group's refusals were checked against must be durable
			// when they are answered.
			s.lone.Wait()
		}
		s.settle(p)
		s.inflight.Add(-1)
	}
}

// settle waits until the applied group p is durable, publishes its
// watermarks and counters, and answers its requests. The syncer settles
// the writer's groups in the order they were applied; a lone group is
// settled by its own caller (see alone), possibly after later groups.
func (s *Store) settle(p *pending) {
	err := p.err
	if p.batch != nil {
		// Pebble accepted this batch: its WAL writer holds it until
		// the sync completes, whether or not the group already failed
		// (the store may have failed between apply and here). Closing
		// it earlier lets the WAL writer write into a reset batch.
		if serr := p.batch.SyncWait(); err == nil {
			err = serr
		}
		_ = p.batch.Close()
	}
	if err == nil {
		err = s.failure()
	}
	if err != nil {
		err = fmt.Errorf("cqrsgen/pebble: commit: %w", err)
		if !errors.Is(err, ErrFailed) {
			ferr := fmt.Errorf("%w: %v", ErrFailed, err)
			s.fatal.CompareAndSwap(nil, &ferr)
		}
		for _, o := range p.ops {
			o.err = err
			o.res = runtime.AppendResult{}
			o.answer()
		}
		return
	}
	// A lone group may be settled after a later group (see alone): keep
	// what the later one published.
	s.wmu.Lock()
	if p.seq > s.ctrSeq {
		s.ctr, s.ctrSeq = p.ctr, p.seq
	}
	s.acked = max(s.acked, p.pos)
	if p.sync && s.durable != s.acked {
		s.durable = s.acked
		if s.advanced != nil {
			close(s.advanced)
			s.advanced = nil
		}
	}
	s.wmu.Unlock()
	for _, o := range p.ops {
		o.answer()
	}
}

const maxCachedHeads = 1 << 20

// headEntry is a cached stream version, updated in place, and the stream's
// tombstone once it is deleted (delete.go).
type headEntry struct {
	version uint64
	tomb    *runtime.Tombstone
}

// head returns the cache entry of the stream with key sk, reading the
// stream's version from the database on a miss.
func (w *writer) head(sk []byte, stream runtime.StreamID) (*headEntry, error) {
	if h, ok := w.heads[string(sk)]; ok {
		return h, nil
	}
	v, _, err := streamHead(w.s.db, stream, ^uint64(0))
	if err != nil {
		return nil, err
	}
	h := &headEntry{version: v}
	if v > 0 {
		if h.tomb, err = w.s.loadTombstone(sk, stream); err != nil {
			return nil, err
		}
	}
	w.heads[string(sk)] = h
	return h, nil
}

// streamHead returns the last version of stream whose position is ≤ limit,
// and that position.
func streamHead(db *pebbledb.DB, stream runtime.StreamID, limit uint64) (uint64, uint64, error) {
	prefix := streamIndexPrefix(nil, stream)
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, 0, err
	}
	var ver, pos uint64
	for ok := it.Last(); ok; ok = it.Prev() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return 0, 0, err
		}
		if len(k) != len(prefix)+8 || len(v) != 8 {
			_ = it.Close()
			return 0, 0, &runtime.DecodeError{Stream: stream, What: "stream index", Err: fmt.Errorf("malformed entry %x=%x", k, v)}
		}
		if p := binary.BigEndian.Uint64(v); p <= limit {
			ver, pos = binary.BigEndian.Uint64(k[len(prefix):]), p
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, 0, err
	}
	return ver, pos, nil
}

func (w *writer) lookupIdem(key string) (runtime.IdempotencyRecord, bool, error) {
	if rec, ok := w.newIdem[key]; ok {
		return rec, true, nil
	}
	if w.purgedIdem[key] {
		return runtime.IdempotencyRecord{}, false, nil
	}
	v, err := w.s.get(idemKey(key))
	if errors.Is(err, runtime.ErrNotFound) {
		return runtime.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return runtime.IdempotencyRecord{}, false, err
	}
	rec, err := decodeIdem(key, v)
	if err != nil {
		return rec, false, &runtime.DecodeError{What: "idempotency record", Err: fmt.Errorf("key %q: %w", key, err)}
	}
	if w.expired(rec) {
		return rec, false, nil
	}
	return rec, true, nil
}

func (w *writer) putIdem(rec runtime.IdempotencyRecord) {
	if w.newIdem == nil {
		w.newIdem = make(map[string]runtime.IdempotencyRecord)
	}
	w.newIdem[rec.Key] = rec
	if !w.replacesExpired(rec.Key) {
		w.ctr.IdempotencyKeys++
	}
	_ = w.batch.Set(idemKey(rec.Key), encodeIdem(rec), nil)
}

func (w *writer) append(o *op) error {
	req := &o.req
	var existing runtime.IdempotencyRecord
	found := false
	if req.IdempotencyKey != "" {
		var err error
		if existing, found, err = w.lookupIdem(req.IdempotencyKey); err != nil {
			return err
		}
	}
	var h *headEntry
	var cur uint64
	if !found { // a duplicate needs no head
		var err error
		if h, err = w.head(o.sk, req.Stream); err != nil {
			return fmt.Errorf("cqrsgen/pebble: append to %s: %w", req.Stream, err)
		}
		if h.tomb != nil {
			return &runtime.DeletedError{Tombstone: *h.tomb}
		}
		cur = h.version
	}
	res, err := storekit.Check(*req, cur, w.pos, existing, found)
	if err != nil {
		return err
	}
	start := 0
	for _, rh := range o.heads {
		cur++
		w.pos++
		body := o.enc[start:rh.end]
		start = rh.end
		d := w.batch.SetDeferred(9, len(body)+recordTailLen)
		d.Key[0] = tagEvent
		binary.BigEndian.PutUint64(d.Key[1:], w.pos)
		n := copy(d.Value, body)
		putRecordTail(d.Value[n:], rh.crc, cur, w.pos)
		_ = d.Finish()
		w.idx = append(w.idx, tagStream)
		w.idx = append(w.idx, o.sk...)
		w.idx = binary.BigEndian.AppendUint64(w.idx, cur)
		w.idx = binary.BigEndian.AppendUint64(w.idx, w.pos)
		w.idxKeyLens = append(w.idxKeyLens, 1+len(o.sk)+8)
	}
	if res.FirstVersion == 1 {
		w.ctr.Streams++
	}
	w.ctr.Events += uint64(len(o.heads))
	h.version = cur
	if req.IdempotencyKey != "" {
		w.putIdem(storekit.KeyRecord(*req, res, o.clock(w.s.opts.now)))
	}
	o.res = res
	return nil
}

func (w *writer) snapshot(o *op) error {
	sn := o.snap
	if err := w.refuseDeleted(sn.Stream); err != nil { // delete.go
		return err
	}
	key := snapshotKey(sn.Stream)
	cur, seen := w.snapVers[string(key)]
	if !seen {
		v, err := w.s.get(key)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
		case err != nil:
			return fmt.Errorf("cqrsgen/pebble: save snapshot of %s: %w", sn.Stream, err)
		default:
			old, derr := decodeSnapshot(sn.Stream, v)
			if derr != nil {
				// A damaged snapshot is replaced, not kept.
				cur = 0
			} else {
				cur = old.Version
			}
			seen = true
		}
	}
	if seen && cur > sn.Version {
		return nil // snapshots never go backwards
	}
	if !seen {
		w.ctr.Snapshots++
	}
	if w.snapVers == nil {
		w.snapVers = make(map[string]uint64)
	}
	w.snapVers[string(key)] = sn.Version
	// Before the commit: a reader may see "maybe" early, never "no" for a
	// durable snapshot (snapset.go).
	w.s.snaps.add(key[1:])
	sn.Time = storekit.NormalizeTime(sn.Time, w.s.opts.now)
	_ = w.batch.Set(key, encodeSnapshot(sn), nil)
	return nil
}

func (w *writer) checkpoint(o *op) error {
	key := checkpointKey(o.name)
	if !w.newCkpt[o.name] {
		_, err := w.s.get(key)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			w.ctr.Checkpoints++
		case err != nil:
			return fmt.Errorf("cqrsgen/pebble: save checkpoint %q: %w", o.name, err)
		}
		if w.newCkpt == nil {
			w.newCkpt = make(map[string]bool)
		}
		w.newCkpt[o.name] = true
	}
	_ = w.batch.Set(key, encodeCheckpoint(o.pos), nil)
	return nil
}

func (w *writer) saveIdem(o *op) error {
	existing, ok, err := w.lookupIdem(o.idem.Key)
	if err != nil {
		return err
	}
	if ok {
		return &runtime.DuplicateError{Existing: existing}
	}
	if err := w.refuseDeleted(o.idem.Stream); err != nil { // delete.go
		return err
	}
	rec := o.idem
	rec.Time = storekit.NormalizeTime(rec.Time, w.s.opts.now)
	w.putIdem(rec)
	return nil
}
