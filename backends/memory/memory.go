// Package memory is an in-memory runtime.Store for tests, examples and
// short-lived processes.
//
// The store keeps events as encoded bytes, exactly as a durable store
// would, so that codec bugs show up in tests as they would on disk: Data
// and Metadata are copied on the way in and on the way out, and a caller
// can never change what the store holds through a slice or map it passed
// in or got back.
//
// Global positions are allocated under one lock together with the
// expected-version check, so they are gap-free and in commit order across
// all streams. Every append is "durable" (visible to ReadAll, Head and
// Wait) as soon as Append returns; nothing survives the process.
//
// A Store is safe for concurrent use. Readers never hold the store's lock
// while yielding, so a range loop over ReadStream or ReadAll may append,
// break early or be abandoned without blocking anyone.
//
// Memory layout, for speed: the log is a list of fixed-size chunks that are
// never moved (appends never copy the log), event bodies are copied into
// shared append-only arenas (one allocation per arena, not per event), and
// a read copies the bodies of consecutive records into one slab of at most
// slabBytes, each record's Data a disjoint, capacity-limited slice of it, so
// that records still never alias each other or the store. A retained record
// keeps its slab (at most slabBytes) alive.
package memory

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

const (
	// chunkShift sets the number of entries per log chunk (1<<chunkShift).
	chunkShift = 8
	chunkSize  = 1 << chunkShift
	// arenaBytes is the size of one event-body arena; bodies over
	// arenaMaxBody get their own allocation.
	arenaBytes   = 32 << 10
	arenaMaxBody = 2 << 10
	// slabBytes and slabRecords bound the slab one read copies the bodies
	// of consecutive records into.
	slabBytes   = 4 << 10
	slabRecords = 256
)

// Store is an in-memory event store. Create one with New; the zero value is
// not usable.
type Store struct {
	now func() time.Time
	// keyTTL is the idempotency keys' time to live, 0 for ever (see
	// retention.go).
	keyTTL time.Duration

	mu     sync.RWMutex
	closed bool
	// chunks hold every event in position order: position p is entry
	// (p-1)%chunkSize of chunks[(p-1)/chunkSize]. Chunks are never moved and
	// entries are never modified once appended, so a reader may keep the
	// chunk list and the head it saw and read that prefix without the lock.
	chunks []*[chunkSize]entry
	head   uint64
	// arena is the free tail of the current event-body arena. Only written
	// under mu; the bytes handed out are never written again, by any path:
	// VisitStream lends them as Stable, so decoded strings alias them.
	arena []byte
	// streams maps a stream to the positions of its events: positions[v-1]
	// is the position of version v. Append-only, like the log.
	streams     map[runtime.StreamID]*streamState
	snapshots   map[runtime.StreamID]runtime.Snapshot
	checkpoints map[string]uint64
	idempotency map[string]runtime.IdempotencyRecord
	// idemByStream indexes idempotency's keys by stream (see idem.go).
	idemByStream map[runtime.StreamID]map[string]struct{}
	// notify is closed and replaced on an append that a Wait may be
	// blocked on (waiting set) and on Close: the broadcast that wakes Wait.
	notify  chan struct{}
	waiting atomic.Bool
	// truncated is the last position TruncateLog removed, and removed the
	// number of records truncations and hard deletes removed (retention.go,
	// delete.go).
	truncated, removed uint64
	// keyRing holds the data keys of crypto-shredding (keys.go).
	keyRing keyRing
}

// streamState is one stream's index; written only under Store.mu.
// positions[i] is the position of version base+i+1: base is 0 but for a
// hard-deleted stream, whose only record is its tombstone (delete.go).
type streamState struct {
	positions []uint64
	base      uint64
	tomb      *runtime.Tombstone // set once the stream is deleted
}

// version returns the stream's last version.
func (st *streamState) version() uint64 { return st.base + uint64(len(st.positions)) }

// entry is one stored event. Its Data and Metadata are private copies.
type entry struct {
	id       runtime.EventID
	stream   runtime.StreamID
	version  uint64
	name     string
	schema   uint32
	time     time.Time
	metadata map[string]string
	data     []byte
	gone     bool // removed by a hard delete (delete.go)
}

var _ runtime.Store = (*Store)(nil)

// New returns an empty store configured by opts.
func New(opts ...Option) *Store {
	return newStore(opts, &Store{
		now:         time.Now,
		streams:     make(map[runtime.StreamID]*streamState),
		snapshots:   make(map[runtime.StreamID]runtime.Snapshot),
		checkpoints: make(map[string]uint64),
		idempotency: make(map[string]runtime.IdempotencyRecord),
		notify:      make(chan struct{}),
	})
}

func closedErr(op string) error {
	return fmt.Errorf("memory: %s: %w", op, runtime.ErrClosed)
}

// ctxErr is storekit.ContextErr with the operation's name built only when
// the context is done (it is formatted per call otherwise).
func ctxErr(ctx context.Context, op func() string) error {
	if ctx.Err() == nil {
		return nil
	}
	return storekit.ContextErr(ctx, op())
}

// notFoundError is the ErrNotFound of a stream lookup, formatted only when
// read (a Repository looks for a snapshot on every Load).
type notFoundError struct {
	what   string // "load snapshot of"
	stream runtime.StreamID
}

func (e *notFoundError) Error() string {
	return "memory: " + e.what + " " + e.stream.String() + ": " + runtime.ErrNotFound.Error()
}

func (e *notFoundError) Unwrap() error { return runtime.ErrNotFound }

// cloneBytes copies b; an empty b yields an empty, non-nil slice.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// at returns the entry at position pos of a chunk list.
func at(chunks []*[chunkSize]entry, pos uint64) *entry {
	i := pos - 1
	return &chunks[i>>chunkShift][i&(chunkSize-1)]
}

// storeBody returns a private copy of b carved from the arena. Called with
// s.mu held.
func (s *Store) storeBody(b []byte) []byte {
	n := len(b)
	switch {
	case b == nil:
		return nil
	case n == 0:
		return []byte{}
	case n > arenaMaxBody:
		return cloneBytes(b)
	}
	if len(s.arena) < n {
		s.arena = make([]byte, arenaBytes)
	}
	out := s.arena[:n:n]
	copy(out, b)
	s.arena = s.arena[n:]
	return out
}

// slab hands out the copies of the records one read yields.
type slab struct{ buf []byte }

// copy returns a copy of b taken from the slab. When the slab is short it
// allocates a new one sized for b and the bodies of the records after it
// (next(k) is the body of the k-th record after b, ok false past the end of
// the read), up to slabBytes and slabRecords.
func (sl *slab) copy(b []byte, next func(k int) ([]byte, bool)) []byte {
	n := len(b)
	switch {
	case b == nil:
		return nil
	case n == 0:
		return []byte{}
	}
	if len(sl.buf) < n {
		size := n
		for k := 1; k < slabRecords && size < slabBytes; k++ {
			d, ok := next(k)
			if !ok || size+len(d) > slabBytes {
				break
			}
			size += len(d)
		}
		sl.buf = make([]byte, size)
	}
	out := sl.buf[:n:n]
	copy(out, b)
	sl.buf = sl.buf[n:]
	return out
}

// streamRead returns what a read of stream after version after walks: the
// positions of its events from version after+1 on, and the chunks they are
// in (readers use them without the lock: entries are never written again
// once appended). Versions start after the stream's base (a hard
// delete's), and a read from before the first kept version fails with a
// *runtime.TruncatedError (retention.go). ReadStream and VisitStream share
// it.
func (s *Store) streamRead(ctx context.Context, stream runtime.StreamID, after uint64, op func() string) ([]uint64, []*[chunkSize]entry, error) {
	if err := ctxErr(ctx, op); err != nil {
		return nil, nil, err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return nil, nil, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, closedErr(op())
	}
	var positions []uint64
	var base uint64
	if st := s.streams[stream]; st != nil {
		positions, base = st.positions, st.base
	}
	chunks, truncated := s.chunks, s.truncated
	s.mu.RUnlock()

	if after >= base+uint64(len(positions)) {
		return nil, nil, nil
	}
	from := max(after, base) - base
	if err := truncatedRead(stream, positions, after, base, from, truncated); err != nil {
		return nil, nil, err
	}
	return positions[from:], chunks, nil
}

func (e *entry) record(pos uint64, data []byte) runtime.Record {
	return runtime.Record{
		EventID:  e.id,
		Stream:   e.stream,
		Version:  e.version,
		Position: pos,
		Name:     e.name,
		Schema:   e.schema,
		Time:     e.time,
		Metadata: maps.Clone(e.metadata),
		Data:     data,
	}
}

// Append atomically appends req.Events to req.Stream if req.Expected
// matches. See runtime.Store.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	op := func() string { return "append to " + req.Stream.String() }
	if err := ctxErr(ctx, op); err != nil {
		return runtime.AppendResult{}, err
	}
	if err := storekit.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, fmt.Errorf("memory: %w", err)
	}
	// Copy the metadata and take the time before taking the lock; the
	// bodies are copied into the arena under it.
	var metadata []map[string]string
	for i, e := range req.Events {
		if e.Metadata != nil {
			if metadata == nil {
				metadata = make([]map[string]string, len(req.Events))
			}
			metadata[i] = maps.Clone(e.Metadata)
		}
	}
	stamp := storekit.NewStamp(req, s.now)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return runtime.AppendResult{}, closedErr(op())
	}
	if err := ctxErr(ctx, op); err != nil {
		return runtime.AppendResult{}, err
	}
	var existing runtime.IdempotencyRecord
	found := false
	if req.IdempotencyKey != "" {
		existing, found = s.liveKey(req.IdempotencyKey, stamp.Now())
	}
	st := s.streams[req.Stream]
	var actual uint64
	if st != nil {
		if st.tomb != nil && !found { // a keyed retry still gets its first result
			return runtime.AppendResult{}, &runtime.DeletedError{Tombstone: *st.tomb}
		}
		actual = st.version()
	}
	res, err := storekit.Check(req, actual, s.head, existing, found)
	if err != nil {
		return runtime.AppendResult{}, err
	}
	if st == nil {
		st = &streamState{}
		s.streams[req.Stream] = st
	}
	for i, e := range req.Events {
		id, t := stamp.Event(i)
		i0 := s.head // index of the new entry
		if i0>>chunkShift == uint64(len(s.chunks)) {
			s.chunks = append(s.chunks, new([chunkSize]entry))
		}
		en := &s.chunks[i0>>chunkShift][i0&(chunkSize-1)]
		*en = entry{
			id:      id,
			stream:  req.Stream,
			version: actual + 1 + uint64(i),
			name:    e.Name,
			schema:  e.Schema,
			time:    t,
			data:    s.storeBody(e.Data),
		}
		if metadata != nil {
			en.metadata = metadata[i]
		}
		s.head++
		st.positions = append(st.positions, s.head)
	}
	if req.IdempotencyKey != "" {
		s.putKey(storekit.KeyRecord(req, res, stamp.Now()))
	}
	// Wait sets waiting under the read lock after taking notify, so a Wait
	// that saw the old head is always woken.
	if s.waiting.Load() {
		s.waiting.Store(false)
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return res, nil
}

// ReadStream yields the events of stream with version > after, in version
// order. The events are those committed when iteration starts.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := func() string { return "read stream " + stream.String() }
		positions, chunks, err := s.streamRead(ctx, stream, after, op)
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		var sl slab
		for i, pos := range positions {
			if i%256 == 255 {
				if err := ctxErr(ctx, op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
			}
			e := at(chunks, pos)
			data := sl.copy(e.data, func(k int) ([]byte, bool) {
				if i+k >= len(positions) {
					return nil, false
				}
				return at(chunks, positions[i+k]).data, true
			})
			if !yield(e.record(pos, data), nil) {
				return
			}
		}
	}
}

// ReadAll yields the events of all streams with position > after, in
// position order, up to the head at the time iteration starts.
func (s *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := func() string { return fmt.Sprintf("read all after position %d", after) }
		if err := ctxErr(ctx, op); err != nil {
			yield(runtime.Record{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(runtime.Record{}, closedErr(op()))
			return
		}
		chunks, head := s.chunks, s.head
		after = max(after, s.truncated) // the log starts after what was truncated
		s.mu.RUnlock()

		var sl slab
		for pos := after + 1; pos <= head && pos > after; pos++ {
			if (pos-after)%256 == 0 {
				if err := ctxErr(ctx, op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
			}
			e := at(chunks, pos)
			if e.gone {
				continue
			}
			data := sl.copy(e.data, func(k int) ([]byte, bool) {
				if pos+uint64(k) > head {
					return nil, false
				}
				return at(chunks, pos+uint64(k)).data, true
			})
			if !yield(e.record(pos, data), nil) {
				return
			}
		}
	}
}

// StreamVersion returns the stream's current version, 0 when missing.
func (s *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	op := "version of " + stream.String()
	if err := storekit.ContextErr(ctx, op); err != nil {
		return 0, err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr(op)
	}
	if st := s.streams[stream]; st != nil {
		return st.version(), nil
	}
	return 0, nil
}

// Head returns the last global position, 0 for an empty store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := storekit.ContextErr(ctx, "head"); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr("head")
	}
	return s.head, nil
}

// Wait blocks until the head is greater than after, then returns it. It
// returns ctx's error when ctx is done first and ErrClosed when the store
// closes.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	op := fmt.Sprintf("wait after position %d", after)
	for {
		if err := storekit.ContextErr(ctx, op); err != nil {
			return 0, err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return 0, closedErr(op)
		}
		head := s.head
		ch := s.notify
		if head <= after {
			s.waiting.Store(true)
		}
		s.mu.RUnlock()
		if head > after {
			return head, nil
		}
		select {
		case <-ctx.Done():
			return 0, storekit.ContextErr(ctx, op)
		case <-ch:
		}
	}
}

// SaveSnapshot stores snap as the stream's latest snapshot unless one at a
// higher version is already stored; saving an older one is not an error
// and changes nothing. A zero Time is set to now.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	op := "save snapshot of " + snap.Stream.String()
	if err := storekit.ContextErr(ctx, op); err != nil {
		return err
	}
	if err := storekit.ValidateSnapshot(snap); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	snap.Data = cloneBytes(snap.Data)
	snap.Time = storekit.NormalizeTime(snap.Time, s.now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr(op)
	}
	if st := s.streams[snap.Stream]; st != nil && st.tomb != nil {
		return &runtime.DeletedError{Tombstone: *st.tomb}
	}
	if old, ok := s.snapshots[snap.Stream]; ok && old.Version > snap.Version {
		return nil
	}
	s.snapshots[snap.Stream] = snap
	return nil
}

// LoadSnapshot returns the stream's latest snapshot or ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	op := func() string { return "load snapshot of " + stream.String() }
	if err := ctxErr(ctx, op); err != nil {
		return runtime.Snapshot{}, err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.Snapshot{}, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.Snapshot{}, closedErr(op())
	}
	snap, ok := s.snapshots[stream]
	if !ok {
		return runtime.Snapshot{}, &notFoundError{what: "load snapshot of", stream: stream}
	}
	snap.Data = cloneBytes(snap.Data)
	return snap, nil
}

// SaveCheckpoint records position under name.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	op := fmt.Sprintf("save checkpoint %q", name)
	if err := storekit.ContextErr(ctx, op); err != nil {
		return err
	}
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr(op)
	}
	s.checkpoints[name] = position
	return nil
}

// LoadCheckpoint returns the position recorded under name or ErrNotFound.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	op := fmt.Sprintf("load checkpoint %q", name)
	if err := storekit.ContextErr(ctx, op); err != nil {
		return 0, err
	}
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr(op)
	}
	pos, ok := s.checkpoints[name]
	if !ok {
		return 0, fmt.Errorf("memory: %s: %w", op, runtime.ErrNotFound)
	}
	return pos, nil
}

// SaveIdempotency records rec if its key is new; otherwise it writes
// nothing and returns a *runtime.DuplicateError with the first record. A
// zero Time is set to now.
func (s *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	op := fmt.Sprintf("save idempotency key %q", rec.Key)
	if err := storekit.ContextErr(ctx, op); err != nil {
		return err
	}
	if err := runtime.ValidateKey("idempotency key", rec.Key); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if rec.Stream != (runtime.StreamID{}) {
		if err := runtime.ValidateStream(rec.Stream); err != nil {
			return fmt.Errorf("memory: idempotency key %q: %w", rec.Key, err)
		}
	}
	rec.Time = storekit.NormalizeTime(rec.Time, s.now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr(op)
	}
	if first, ok := s.liveKey(rec.Key, s.now()); ok {
		return &runtime.DuplicateError{Existing: first}
	}
	if st := s.streams[rec.Stream]; st != nil && st.tomb != nil {
		return &runtime.DeletedError{Tombstone: *st.tomb}
	}
	s.putKey(rec)
	return nil
}

// LoadIdempotency returns the record for key or ErrNotFound.
func (s *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	op := fmt.Sprintf("load idempotency key %q", key)
	if err := storekit.ContextErr(ctx, op); err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	if err := runtime.ValidateKey("idempotency key", key); err != nil {
		return runtime.IdempotencyRecord{}, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.IdempotencyRecord{}, closedErr(op)
	}
	rec, ok := s.idempotency[key]
	if !ok || lifecycle.IdempotencyExpired(rec, s.keyTTL, s.now()) {
		return runtime.IdempotencyRecord{}, fmt.Errorf("memory: %s: %w", op, runtime.ErrNotFound)
	}
	return rec, nil
}

// Stats returns the store's counters. DiskBytes is always 0.
func (s *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	if err := storekit.ContextErr(ctx, "stats"); err != nil {
		return runtime.Stats{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.Stats{}, closedErr("stats")
	}
	return runtime.Stats{
		Events:          s.head - s.removed,
		Streams:         uint64(len(s.streams)),
		Snapshots:       uint64(len(s.snapshots)),
		Checkpoints:     uint64(len(s.checkpoints)),
		IdempotencyKeys: uint64(len(s.idempotency)),
		Head:            s.head,
	}, nil
}

// Flush is a no-op: every append is visible as soon as it returns.
func (s *Store) Flush(ctx context.Context) error {
	if err := storekit.ContextErr(ctx, "flush"); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return closedErr("flush")
	}
	return nil
}

// Close releases the store's data and wakes every Wait with ErrClosed. It
// waits for in-flight appends; every later call, including a second Close,
// returns an error wrapping runtime.ErrClosed. Iterations already started
// finish over the events they had.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr("close")
	}
	s.closed = true
	s.chunks = nil
	s.arena = nil
	s.streams = nil
	s.snapshots = nil
	s.checkpoints = nil
	s.idempotency, s.idemByStream = nil, nil
	close(s.notify)
	return nil
}
