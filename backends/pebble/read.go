package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// Append appends req atomically (see runtime.Store). It returns once the
// events are synced to disk, unless the store was opened WithNoSync.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	if err := runtime.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, err
	}
	o := getAppendOp(ctx, req, s.opts.now)
	err := s.submit(o)
	res := o.res
	putAppendOp(o)
	if err != nil {
		return runtime.AppendResult{}, err
	}
	return res, nil
}

// trackedIter is a Pebble iterator that Close can close under a reader.
type trackedIter struct {
	mu     sync.Mutex
	it     *pebbledb.Iterator
	closed bool
	err    error
}

func (t *trackedIter) close() {
	if !t.closed {
		t.closed = true
		t.err = t.it.Close()
	}
}

// newIter opens a tracked iterator; the caller must call release.
func (s *Store) newIter(ctx context.Context, opName string, o *pebbledb.IterOptions) (*trackedIter, error) {
	if err := s.enter(ctx, opName); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(o)
	if err != nil {
		return nil, fmt.Errorf("cqrsgen/pebble: %s: %w", opName, err)
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
	err := t.it.Error()
	if t.closed {
		return nil
	}
	t.close()
	return errors.Join(err, t.err)
}

var errStoreClosed = fmt.Errorf("cqrsgen/pebble: read: %w", runtime.ErrClosed)

// ReadStream yields stream's events with version > after, in order, up to
// the last acknowledged append. The iterator is closed when the loop ends,
// including on break; a Close of the store ends it with ErrClosed.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := "read stream " + stream.String()
		if err := runtime.ValidateStream(stream); err != nil {
			yield(runtime.Record{}, err)
			return
		}
		if after >= runtime.MaxVersion {
			return
		}
		s.wmu.Lock()
		limit := s.acked
		s.wmu.Unlock()
		prefix := streamIndexPrefix(nil, stream)
		lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
		idx, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		defer func() { _ = s.release(idx) }()
		var recs *trackedIter
		defer func() {
			if recs != nil {
				_ = s.release(recs)
			}
		}()
		var key [9]byte
		first := true
		for {
			if err := runtime.ContextErr(ctx, op); err != nil {
				yield(runtime.Record{}, err)
				return
			}
			rec, done, err := s.streamStep(ctx, idx, &recs, op, stream, prefix, limit, key[:0], first)
			first = false
			if done {
				if err == nil {
					err = s.finish(idx, op)
				}
				if err != nil {
					yield(runtime.Record{}, err)
				}
				return
			}
			if err != nil {
				yield(runtime.Record{}, err)
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// finish reports an iterator's own error after its last step.
func (s *Store) finish(t *trackedIter, op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if err := t.it.Error(); err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	return nil
}

// streamStep moves the index iterator one entry and loads the record it
// points to through the (lazily opened) records iterator.
func (s *Store) streamStep(ctx context.Context, idx *trackedIter, recs **trackedIter, op string,
	stream runtime.StreamID, prefix []byte, limit uint64, key []byte, first bool) (runtime.Record, bool, error) {
	idx.mu.Lock()
	if idx.closed {
		idx.mu.Unlock()
		return runtime.Record{}, true, errStoreClosed
	}
	var ok bool
	if first {
		ok = idx.it.First()
	} else {
		ok = idx.it.Next()
	}
	if !ok {
		idx.mu.Unlock()
		return runtime.Record{}, true, nil
	}
	k := idx.it.Key()
	v, err := idx.it.ValueAndErr()
	if err != nil {
		idx.mu.Unlock()
		return runtime.Record{}, true, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	if len(k) != len(prefix)+8 || len(v) != 8 {
		idx.mu.Unlock()
		return runtime.Record{}, true, &runtime.DecodeError{Stream: stream, What: "stream index", Err: fmt.Errorf("malformed entry %x", k)}
	}
	version := binary.BigEndian.Uint64(k[len(prefix):])
	pos := binary.BigEndian.Uint64(v)
	idx.mu.Unlock()
	if pos > limit {
		return runtime.Record{}, true, nil // not yet acknowledged
	}
	if *recs == nil {
		t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
		if err != nil {
			return runtime.Record{}, true, err
		}
		*recs = t
	}
	r := *recs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return runtime.Record{}, true, errStoreClosed
	}
	key = eventKey(key, pos)
	if !r.it.SeekGE(key) || string(r.it.Key()) != string(key) {
		if err := r.it.Error(); err != nil {
			return runtime.Record{}, true, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
		}
		return runtime.Record{}, true, &runtime.DecodeError{Stream: stream, Version: version, Position: pos, What: "envelope",
			Err: errors.New("the stream index points to a missing event record")}
	}
	val, err := r.it.ValueAndErr()
	if err != nil {
		return runtime.Record{}, true, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	rec, err := decodeRecord(val)
	if err == nil && (rec.Stream != stream || rec.Version != version || rec.Position != pos) {
		err = fmt.Errorf("record holds %s version %d position %d", rec.Stream, rec.Version, rec.Position)
	}
	if err != nil {
		return runtime.Record{}, true, &runtime.DecodeError{Stream: stream, Version: version, Position: pos, What: "envelope", Err: err}
	}
	return rec, false, nil
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
		t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: eventKey(nil, after+1), UpperBound: eventKey(nil, head+1)})
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		defer func() { _ = s.release(t) }()
		for first := true; ; first = false {
			if err := runtime.ContextErr(ctx, op); err != nil {
				yield(runtime.Record{}, err)
				return
			}
			rec, done, err := allStep(t, first)
			if done && err == nil {
				err = s.finish(t, op)
			}
			if err != nil {
				yield(runtime.Record{}, err)
				return
			}
			if done || !yield(rec, nil) {
				return
			}
		}
	}
}

func allStep(t *trackedIter, first bool) (runtime.Record, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return runtime.Record{}, true, errStoreClosed
	}
	var ok bool
	if first {
		ok = t.it.First()
	} else {
		ok = t.it.Next()
	}
	if !ok {
		return runtime.Record{}, true, nil
	}
	k := t.it.Key()
	if len(k) != 9 {
		return runtime.Record{}, true, &runtime.DecodeError{What: "event key", Err: fmt.Errorf("malformed key %x", k)}
	}
	pos := binary.BigEndian.Uint64(k[1:])
	v, err := t.it.ValueAndErr()
	if err != nil {
		return runtime.Record{}, true, fmt.Errorf("cqrsgen/pebble: read all at position %d: %w", pos, err)
	}
	rec, err := decodeRecord(v)
	if err == nil && rec.Position != pos {
		err = fmt.Errorf("record at position %d claims position %d", pos, rec.Position)
	}
	if err != nil {
		de := &runtime.DecodeError{Position: pos, What: "envelope", Err: err}
		if len(v) > 4 {
			if st, ver, ok := peekRecordHeader(v[:len(v)-4]); ok && st.Type != "" && st.ID != "" {
				de.Stream, de.Version = st, ver
				de.Err = fmt.Errorf("%w (stream and version as read from the damaged record)", err)
			}
		}
		return runtime.Record{}, true, de
	}
	return rec, false, nil
}

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

// SaveSnapshot stores snap unless a snapshot at a higher version exists.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	if err := runtime.ValidateSnapshot(snap); err != nil {
		return err
	}
	return s.submit(&op{kind: opSnapshot, ctx: ctx, snap: snap})
}

// LoadSnapshot returns the stream's latest snapshot or runtime.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.Snapshot{}, err
	}
	op := "load snapshot of " + stream.String()
	if err := s.enter(ctx, op); err != nil {
		return runtime.Snapshot{}, err
	}
	defer s.mu.RUnlock()
	v, err := s.get(snapshotKey(stream))
	if err != nil {
		return runtime.Snapshot{}, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	snap, err := decodeSnapshot(stream, v)
	if err != nil {
		return runtime.Snapshot{}, &runtime.DecodeError{Stream: stream, Version: snap.Version, What: "snapshot", Err: err}
	}
	return snap, nil
}

// SaveCheckpoint records position under name.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return err
	}
	return s.submit(&op{kind: opCheckpoint, ctx: ctx, name: name, pos: position})
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

// SaveIdempotency records rec if its key is new, or returns a
// *runtime.DuplicateError with the first record.
func (s *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	if err := runtime.ValidateKey("idempotency key", rec.Key); err != nil {
		return err
	}
	if err := runtime.ValidateStream(rec.Stream); err != nil {
		return err
	}
	return s.submit(&op{kind: opIdem, ctx: ctx, idem: rec})
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
	return rec, nil
}

// Flush makes every acknowledged append durable. It costs one fsync with
// WithNoSync and is a no-op otherwise (appends are synced before they
// return).
func (s *Store) Flush(ctx context.Context) error {
	if !s.opts.noSync {
		if err := s.enter(ctx, "flush"); err != nil {
			return err
		}
		s.mu.RUnlock()
		return nil
	}
	return s.submit(&op{kind: opFlush, ctx: ctx})
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
