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
package memory

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"maps"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Store is an in-memory event store. Create one with New; the zero value is
// not usable.
type Store struct {
	now func() time.Time

	mu     sync.RWMutex
	closed bool
	// log holds every event in position order: log[p-1] has position p.
	// Entries are never modified once appended, so a reader may keep a
	// prefix of the slice and read it without the lock.
	log []entry
	// streams maps a stream to the positions of its events: positions[v-1]
	// is the position of version v. Append-only, like log.
	streams     map[runtime.StreamID][]uint64
	snapshots   map[runtime.StreamID]runtime.Snapshot
	checkpoints map[string]uint64
	idempotency map[string]runtime.IdempotencyRecord
	// notify is closed and replaced after every append and on Close: the
	// broadcast that wakes Wait.
	notify chan struct{}
}

// entry is one stored event. Its Data and Metadata are private copies.
type entry struct {
	stream   runtime.StreamID
	version  uint64
	name     string
	schema   uint32
	time     time.Time
	metadata map[string]string
	data     []byte
}

var _ runtime.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		now:         time.Now,
		streams:     make(map[runtime.StreamID][]uint64),
		snapshots:   make(map[runtime.StreamID]runtime.Snapshot),
		checkpoints: make(map[string]uint64),
		idempotency: make(map[string]runtime.IdempotencyRecord),
		notify:      make(chan struct{}),
	}
}

func closedErr(op string) error {
	return fmt.Errorf("memory: %s: %w", op, runtime.ErrClosed)
}

// cloneBytes copies b; an empty b yields an empty, non-nil slice.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

func (e *entry) record(pos uint64) runtime.Record {
	return runtime.Record{
		Stream:   e.stream,
		Version:  e.version,
		Position: pos,
		Name:     e.name,
		Schema:   e.schema,
		Time:     e.time,
		Metadata: maps.Clone(e.metadata),
		Data:     cloneBytes(e.data),
	}
}

// Append atomically appends req.Events to req.Stream if req.Expected
// matches. See runtime.Store.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	op := "append to " + req.Stream.String()
	if err := runtime.ContextErr(ctx, op); err != nil {
		return runtime.AppendResult{}, err
	}
	if err := runtime.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, fmt.Errorf("memory: %w", err)
	}
	// Copy the events before taking the lock.
	now := s.now()
	entries := make([]entry, len(req.Events))
	for i, e := range req.Events {
		entries[i] = entry{
			stream:   req.Stream,
			name:     e.Name,
			schema:   e.Schema,
			time:     runtime.NormalizeTime(e.Time, func() time.Time { return now }),
			metadata: maps.Clone(e.Metadata),
			data:     cloneBytes(e.Data),
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return runtime.AppendResult{}, closedErr(op)
	}
	if err := runtime.ContextErr(ctx, op); err != nil {
		return runtime.AppendResult{}, err
	}
	if req.IdempotencyKey != "" {
		if first, ok := s.idempotency[req.IdempotencyKey]; ok {
			return runtime.AppendResult{}, &runtime.DuplicateError{Existing: first}
		}
	}
	positions := s.streams[req.Stream]
	actual := uint64(len(positions))
	if err := runtime.CheckExpected(req.Stream, req.Expected, actual); err != nil {
		return runtime.AppendResult{}, err
	}
	if actual+uint64(len(entries)) > runtime.MaxVersion {
		return runtime.AppendResult{}, fmt.Errorf("memory: %w: %s would pass version %d", runtime.ErrTooLarge, req.Stream, runtime.MaxVersion)
	}
	res := runtime.AppendResult{
		FirstVersion:  actual + 1,
		FirstPosition: uint64(len(s.log)) + 1,
	}
	for i := range entries {
		entries[i].version = actual + 1 + uint64(i)
		s.log = append(s.log, entries[i])
		positions = append(positions, uint64(len(s.log)))
	}
	s.streams[req.Stream] = positions
	res.LastVersion = actual + uint64(len(entries))
	res.LastPosition = uint64(len(s.log))
	if req.IdempotencyKey != "" {
		s.idempotency[req.IdempotencyKey] = runtime.IdempotencyRecord{
			Key:      req.IdempotencyKey,
			Stream:   req.Stream,
			Version:  res.LastVersion,
			Position: res.LastPosition,
			Time:     runtime.NormalizeTime(time.Time{}, func() time.Time { return now }),
		}
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return res, nil
}

// ReadStream yields the events of stream with version > after, in version
// order. The events are those committed when iteration starts.
func (s *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := "read stream " + stream.String()
		if err := runtime.ContextErr(ctx, op); err != nil {
			yield(runtime.Record{}, err)
			return
		}
		if err := runtime.ValidateStream(stream); err != nil {
			yield(runtime.Record{}, fmt.Errorf("memory: %w", err))
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(runtime.Record{}, closedErr(op))
			return
		}
		positions := s.streams[stream]
		log := s.log
		s.mu.RUnlock()

		if after >= uint64(len(positions)) {
			return
		}
		for i, pos := range positions[after:] {
			if i%256 == 255 {
				if err := runtime.ContextErr(ctx, op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
			}
			if !yield(log[pos-1].record(pos), nil) {
				return
			}
		}
	}
}

// ReadAll yields the events of all streams with position > after, in
// position order, up to the head at the time iteration starts.
func (s *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		op := fmt.Sprintf("read all after position %d", after)
		if err := runtime.ContextErr(ctx, op); err != nil {
			yield(runtime.Record{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(runtime.Record{}, closedErr(op))
			return
		}
		log := s.log
		s.mu.RUnlock()

		if after >= uint64(len(log)) {
			return
		}
		for i := after; i < uint64(len(log)); i++ {
			if (i-after)%256 == 255 {
				if err := runtime.ContextErr(ctx, op); err != nil {
					yield(runtime.Record{}, err)
					return
				}
			}
			if !yield(log[i].record(i+1), nil) {
				return
			}
		}
	}
}

// StreamVersion returns the stream's current version, 0 when missing.
func (s *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	op := "version of " + stream.String()
	if err := runtime.ContextErr(ctx, op); err != nil {
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
	return uint64(len(s.streams[stream])), nil
}

// Head returns the last global position, 0 for an empty store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := runtime.ContextErr(ctx, "head"); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr("head")
	}
	return uint64(len(s.log)), nil
}

// Wait blocks until the head is greater than after, then returns it. It
// returns ctx's error when ctx is done first and ErrClosed when the store
// closes.
func (s *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	op := fmt.Sprintf("wait after position %d", after)
	for {
		if err := runtime.ContextErr(ctx, op); err != nil {
			return 0, err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return 0, closedErr(op)
		}
		head := uint64(len(s.log))
		ch := s.notify
		s.mu.RUnlock()
		if head > after {
			return head, nil
		}
		select {
		case <-ctx.Done():
			return 0, runtime.ContextErr(ctx, op)
		case <-ch:
		}
	}
}

// SaveSnapshot stores snap as the stream's latest snapshot unless one at a
// higher version is already stored; saving an older one is not an error
// and changes nothing. A zero Time is set to now.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	op := "save snapshot of " + snap.Stream.String()
	if err := runtime.ContextErr(ctx, op); err != nil {
		return err
	}
	if err := runtime.ValidateSnapshot(snap); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	snap.Data = cloneBytes(snap.Data)
	snap.Time = runtime.NormalizeTime(snap.Time, s.now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr(op)
	}
	if old, ok := s.snapshots[snap.Stream]; ok && old.Version > snap.Version {
		return nil
	}
	s.snapshots[snap.Stream] = snap
	return nil
}

// LoadSnapshot returns the stream's latest snapshot or ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	op := "load snapshot of " + stream.String()
	if err := runtime.ContextErr(ctx, op); err != nil {
		return runtime.Snapshot{}, err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.Snapshot{}, fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.Snapshot{}, closedErr(op)
	}
	snap, ok := s.snapshots[stream]
	if !ok {
		return runtime.Snapshot{}, fmt.Errorf("memory: %s: %w", op, runtime.ErrNotFound)
	}
	snap.Data = cloneBytes(snap.Data)
	return snap, nil
}

// SaveCheckpoint records position under name.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	op := fmt.Sprintf("save checkpoint %q", name)
	if err := runtime.ContextErr(ctx, op); err != nil {
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
	if err := runtime.ContextErr(ctx, op); err != nil {
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
	if err := runtime.ContextErr(ctx, op); err != nil {
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
	rec.Time = runtime.NormalizeTime(rec.Time, s.now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return closedErr(op)
	}
	if first, ok := s.idempotency[rec.Key]; ok {
		return &runtime.DuplicateError{Existing: first}
	}
	s.idempotency[rec.Key] = rec
	return nil
}

// LoadIdempotency returns the record for key or ErrNotFound.
func (s *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	op := fmt.Sprintf("load idempotency key %q", key)
	if err := runtime.ContextErr(ctx, op); err != nil {
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
	if !ok {
		return runtime.IdempotencyRecord{}, fmt.Errorf("memory: %s: %w", op, runtime.ErrNotFound)
	}
	return rec, nil
}

// Stats returns the store's counters. DiskBytes is always 0.
func (s *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	if err := runtime.ContextErr(ctx, "stats"); err != nil {
		return runtime.Stats{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return runtime.Stats{}, closedErr("stats")
	}
	return runtime.Stats{
		Events:          uint64(len(s.log)),
		Streams:         uint64(len(s.streams)),
		Snapshots:       uint64(len(s.snapshots)),
		Checkpoints:     uint64(len(s.checkpoints)),
		IdempotencyKeys: uint64(len(s.idempotency)),
		Head:            uint64(len(s.log)),
	}, nil
}

// Flush is a no-op: every append is visible as soon as it returns.
func (s *Store) Flush(ctx context.Context) error {
	if err := runtime.ContextErr(ctx, "flush"); err != nil {
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
	s.log = nil
	s.streams = nil
	s.snapshots = nil
	s.checkpoints = nil
	s.idempotency = nil
	close(s.notify)
	return nil
}
