package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// trackedIter is a Pebble iterator that Close can close under a reader;
// recs, when set, is a second iterator of the same read (ReadStream's
// records), closed with it. mu guards both and closed: a reader holds it
// while it moves them, Close while it closes them.
type trackedIter struct {
	mu     sync.Mutex
	it     *pebbledb.Iterator
	recs   *pebbledb.Iterator
	closed bool
	err    error
	// shut mirrors closed for a reader that does not hold mu: ReadAll checks
	// it between the records it decoded under one lock (readall.go).
	shut atomic.Bool
}

func (t *trackedIter) close() {
	if !t.closed {
		t.closed = true
		t.shut.Store(true)
		t.err = t.it.Close()
		if t.recs != nil {
			t.err = errors.Join(t.err, t.recs.Close())
		}
	}
}

// newIter opens a tracked iterator; the caller must call release. op names
// the operation in errors; it is called only on failure.
func (s *Store) newIter(ctx context.Context, op func() string, o *pebbledb.IterOptions) (*trackedIter, error) {
	if err := s.enterLazy(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(o)
	if err != nil {
		return nil, fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
	}
	t := &trackedIter{it: it}
	s.itersMu.Lock()
	s.iters[t] = struct{}{}
	s.itersMu.Unlock()
	return t, nil
}

// release closes t (unless Close already did) and returns its error.
func (s *Store) release(t *trackedIter) error {
	s.itersMu.Lock()
	delete(s.iters, t)
	s.itersMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	err := t.it.Error()
	if t.recs != nil {
		err = errors.Join(err, t.recs.Error())
	}
	t.close()
	return errors.Join(err, t.err)
}

var errStoreClosed = fmt.Errorf("cqrsgen/pebble: read: %w", runtime.ErrClosed)

// eventBounds are the bounds of every event record.
var eventBounds = pebbledb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}}

// ReadStream yields stream's events with version > after, in order, up to
// the last acknowledged append. The iterator is closed when the loop ends,
// including on break; a Close of the store ends it with ErrClosed. It
// decodes in batches under one lock of its iterators, as ReadAll does
// (readall.go), and ends at the next record on a Close or a cancellation
// that comes mid-batch.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		// op is built only for an error: a load that succeeds pays
		// nothing for it.
		op := func() string { return "read stream " + stream.String() }
		var sr streamReader
		if ok, err := s.openStream(ctx, &sr, stream, after, op); !ok {
			if err != nil {
				yield(runtime.Record{}, err)
			}
			return
		}
		t := sr.t
		defer func() { _ = s.release(t) }()
		src := batchSource{stream: &sr, t: t}
		s.yieldBatches(ctx, &src, op, yield)
	}
}

// openStream validates a read of stream after version after and opens
// sr's index iterator over it, bounded by the last acknowledged append;
// false with a nil error when there is nothing to read. sr must be a
// zero streamReader; on true the caller must release sr.t.
func (s *Store) openStream(ctx context.Context, sr *streamReader, stream runtime.StreamID, after uint64, op func() string) (bool, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return false, err
	}
	if after >= runtime.MaxVersion {
		return false, nil
	}
	if err := s.truncatedRead(ctx, stream, after); err != nil { // retention.go
		return false, err
	}
	s.wmu.Lock()
	limit := s.acked
	s.wmu.Unlock()
	// sr's buffer holds the prefix, the lower bound and the upper bound.
	prefix := streamIndexPrefix(sr.kb[:0], stream)
	lower := binary.BigEndian.AppendUint64(prefix, after+1)
	upper := prefixEndInto(lower[len(lower):], prefix)
	t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, err
	}
	sr.s, sr.t, sr.stream, sr.prefix, sr.limit, sr.op = s, t, stream, prefix, limit, op
	return true, nil
}

// finish reports an iterator's own error after its last step.
func (s *Store) finish(t *trackedIter, op func() string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	err := t.it.Error()
	if err == nil && t.recs != nil {
		err = t.recs.Error()
	}
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
	}
	return nil
}

// streamReader is one ReadStream's state: its tracked index iterator (and
// records iterator, opened at the first entry), the stream and its index
// prefix, and the last acknowledged position at the start of the read.
type streamReader struct {
	s      *Store
	t      *trackedIter
	stream runtime.StreamID
	prefix []byte
	limit  uint64
	op     func() string
	key    [9]byte
	slab   slab
	kb     [64]byte // holds prefix and the iterator's bounds
	// view is what VisitStream shows its callback: a field, not a
	// variable of its own, because a view handed to a callback escapes,
	// and the reader is on the heap already (its bounds are Pebble's).
	view runtime.EventView
	// chunk is the free tail of the chunk VisitStream copies bodies into
	// (stable), and chunks how many chunks the visit has taken.
	chunk  []byte
	chunks int
}

// fill moves the index iterator over up to len(recs) entries (from the
// first when first) and decodes the records they point to into recs,
// holding the tracked iterators' lock for all of them. It returns how many
// it decoded, whether the read is over, and the error that ended it; the
// records before an error are valid.
func (r *streamReader) fill(first bool, recs []runtime.Record) (n int, done bool, err error) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, true, errStoreClosed
	}
	for n < len(recs) {
		version, pos, val, done, err := r.next(first && n == 0)
		if done || err != nil {
			return n, true, err
		}
		rec := &recs[n]
		err = decodeRecordInto(rec, val, &r.stream, &r.slab)
		if err == nil && (rec.Stream != r.stream || rec.Version != version || rec.Position != pos) {
			err = fmt.Errorf("record holds %s version %d position %d", rec.Stream, rec.Version, rec.Position)
		}
		if err != nil {
			return n, true, &runtime.DecodeError{Stream: r.stream, Version: version, Position: pos, What: "envelope", Err: err}
		}
		n++
	}
	return n, false, nil
}

// next moves the index iterator one entry (to the first when first) and
// the records iterator to the record the entry points to, and returns the
// entry's version and position and the record's value, which is valid
// until the iterators move. done is true at the end of the stream (or of
// what was acknowledged when the read began) and on an error. The caller
// holds t.mu and has checked that t is not closed.
func (r *streamReader) next(first bool) (version, pos uint64, val []byte, done bool, err error) {
	t := r.t
	var ok bool
	if first {
		ok = t.it.First()
	} else {
		ok = t.it.Next()
	}
	if !ok {
		return 0, 0, nil, true, nil
	}
	k := t.it.Key()
	v, err := t.it.ValueAndErr()
	if err != nil {
		return 0, 0, nil, true, fmt.Errorf("cqrsgen/pebble: %s: %w", r.op(), err)
	}
	if len(k) != len(r.prefix)+8 || len(v) != 8 {
		return 0, 0, nil, true, &runtime.DecodeError{Stream: r.stream, What: "stream index", Err: fmt.Errorf("malformed entry %x", k)}
	}
	version = binary.BigEndian.Uint64(k[len(r.prefix):])
	pos = binary.BigEndian.Uint64(v)
	if pos > r.limit {
		return 0, 0, nil, true, nil // not yet acknowledged
	}
	if t.recs == nil {
		// t is registered, so Close closes the database only after it has
		// taken t.mu, which the caller holds.
		if t.recs, err = r.s.db.NewIter(&eventBounds); err != nil {
			return 0, 0, nil, true, fmt.Errorf("cqrsgen/pebble: %s: %w", r.op(), err)
		}
	}
	// The events of one append have consecutive positions: when the
	// previous record's position is the one before, a Next reaches the
	// record (and is checked like a seek), cheaper than a SeekGE.
	prev := binary.BigEndian.Uint64(r.key[1:])
	r.key[0] = tagEvent
	binary.BigEndian.PutUint64(r.key[1:], pos)
	if prev == 0 || prev+1 != pos || !t.recs.Next() || string(t.recs.Key()) != string(r.key[:]) {
		if !t.recs.SeekGE(r.key[:]) || string(t.recs.Key()) != string(r.key[:]) {
			if err := t.recs.Error(); err != nil {
				return 0, 0, nil, true, fmt.Errorf("cqrsgen/pebble: %s: %w", r.op(), err)
			}
			return 0, 0, nil, true, r.s.missingRecord(r.stream, version, pos) // retention.go
		}
	}
	val, err = t.recs.ValueAndErr()
	if err != nil {
		return 0, 0, nil, true, fmt.Errorf("cqrsgen/pebble: %s: %w", r.op(), err)
	}
	return version, pos, val, false, nil
}

// ReadAll yields every event with position > after, in position order, up
// to the durable head at the time of the call.
func (s *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		const op = "read all"
		s.wmu.Lock()
		head := s.durable
		s.wmu.Unlock()
		if after >= head {
			if err := s.enter(ctx, op); err != nil {
				yield(runtime.Record{}, err)
				return
			}
			s.mu.RUnlock()
			return
		}
		var kb [18]byte
		lower := eventKey(kb[:0], after+1)
		upper := eventKey(lower[len(lower):], head+1)
		t, err := s.newIter(ctx, opReadAll, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		defer func() { _ = s.release(t) }()
		s.readAll(ctx, t, yield)
	}
}

func opReadAll() string { return "read all" }

// StreamVersion returns the stream's last acknowledged version, 0 when the
// stream does not exist.
func (s *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return 0, err
	}
	op := "stream version of " + stream.String()
	if err := s.enter(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	limit := s.acked
	s.wmu.Unlock()
	v, _, err := streamHead(s.db, stream, limit)
	if err != nil {
		return 0, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	return v, nil
}

// Head returns the last durable global position.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.enter(ctx, "head"); err != nil {
		return 0, err
	}
	s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.durable, nil
}

// Wait blocks until the durable head passes after and returns it.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	if err := s.enter(ctx, "wait"); err != nil {
		return 0, err
	}
	s.mu.RUnlock()
	for {
		s.wmu.Lock()
		head := s.durable
		if s.advanced == nil {
			s.advanced = make(chan struct{})
		}
		ch := s.advanced
		s.wmu.Unlock()
		if head > after {
			return head, nil
		}
		select {
		case <-ch:
		case <-s.closedCh:
			return 0, fmt.Errorf("cqrsgen/pebble: wait: %w", runtime.ErrClosed)
		case <-ctx.Done():
			return 0, fmt.Errorf("cqrsgen/pebble: wait: %w", ctx.Err())
		}
	}
}

// LoadSnapshot returns the stream's latest snapshot or runtime.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.Snapshot{}, err
	}
	op := func() string { return "load snapshot of " + stream.String() }
	if err := s.enterLazy(ctx, op); err != nil {
		return runtime.Snapshot{}, err
	}
	defer s.mu.RUnlock()
	if !s.snaps.maybe(stream) { // no Get that would miss (snapset.go)
		return runtime.Snapshot{}, &noSnapshotError{stream: stream}
	}
	if s.snapGet != nil {
		s.snapGet()
	}
	v, err := s.get(snapshotKey(stream))
	if err != nil {
		return runtime.Snapshot{}, fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
	}
	snap, err := decodeSnapshot(stream, v)
	if err != nil {
		return runtime.Snapshot{}, &runtime.DecodeError{Stream: stream, Version: snap.Version, What: "snapshot", Err: err}
	}
	return snap, nil
}

// LoadCheckpoint returns the position recorded under name or
// runtime.ErrNotFound.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return 0, err
	}
	op := fmt.Sprintf("load checkpoint %q", name)
	if err := s.enter(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	v, err := s.get(checkpointKey(name))
	if err != nil {
		return 0, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	p, err := decodeCheckpoint(v)
	if err != nil {
		return 0, &runtime.DecodeError{What: "checkpoint", Err: fmt.Errorf("%q: %w", name, err)}
	}
	return p, nil
}

// LoadIdempotency returns the record for key or runtime.ErrNotFound.
func (s *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	if err := runtime.ValidateKey("idempotency key", key); err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	op := fmt.Sprintf("load idempotency key %q", key)
	if err := s.enter(ctx, op); err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	defer s.mu.RUnlock()
	v, err := s.get(idemKey(key))
	if err != nil {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	rec, err := decodeIdem(key, v)
	if err != nil {
		return runtime.IdempotencyRecord{}, &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, What: "idempotency record", Err: fmt.Errorf("key %q: %w", key, err)}
	}
	if s.expiredRecord(rec) {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen/pebble: %s: %w", op, runtime.ErrNotFound)
	}
	return rec, nil
}

// Stats returns the store's counters and, in Extra, Pebble metrics under
// these names: compactions, compaction_debt_bytes, flushes, l0_files,
// l0_sublevels, tables, table_bytes, memtable_bytes, cache_bytes,
// cache_hits, cache_misses, wal_files, wal_bytes, wal_physical_bytes,
// read_amp, open_iterators, and commits: the batches the writer has
// committed since Open, one per group of queued requests (Events/commits
// shows how well concurrent appends share commits), and gather_backoffs:
// how often the writer stopped gathering requests for a while because the
// process's other work kept the processors busy (see writer.gather).
func (s *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	if err := s.enter(ctx, "stats"); err != nil {
		return runtime.Stats{}, err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	c, head := s.ctr, s.durable
	s.wmu.Unlock()
	m := s.db.Metrics()
	s.itersMu.Lock()
	nIters := len(s.iters)
	s.itersMu.Unlock()
	var tables, tableBytes int64
	for _, l := range m.Levels {
		tables += l.TablesCount
		tableBytes += l.TablesSize
	}
	return runtime.Stats{
		Events:          c.Events,
		Streams:         c.Streams,
		Snapshots:       c.Snapshots,
		Checkpoints:     c.Checkpoints,
		IdempotencyKeys: c.IdempotencyKeys,
		Head:            head,
		DiskBytes:       int64(m.DiskSpaceUsage()),
		Extra: map[string]int64{
			"compactions":           m.Compact.Count,
			"compaction_debt_bytes": int64(m.Compact.EstimatedDebt),
			"flushes":               m.Flush.Count,
			"l0_files":              m.Levels[0].TablesCount,
			"l0_sublevels":          int64(m.Levels[0].Sublevels),
			"tables":                tables,
			"table_bytes":           tableBytes,
			"memtable_bytes":        int64(m.MemTable.Size),
			"cache_bytes":           m.BlockCache.Size,
			"cache_hits":            m.BlockCache.Hits,
			"cache_misses":          m.BlockCache.Misses,
			"wal_files":             m.WAL.Files,
			"wal_bytes":             int64(m.WAL.Size),
			"wal_physical_bytes":    int64(m.WAL.PhysicalSize),
			"read_amp":              int64(m.ReadAmp()),
			"open_iterators":        int64(nIters),
			"commits":               s.commits.Load(),
			"gather_backoffs":       s.backoffs.Load(),
		},
	}, nil
}
