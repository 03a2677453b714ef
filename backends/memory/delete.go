package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

var _ lifecycle.StreamDeleter = (*Store)(nil)

// DeleteStream deletes a stream (see lifecycle.StreamDeleter). A hard delete
// drops the stream's entries from the log: the chunks that hold them are
// copied without them (copy on write), so reads already under way finish
// over what they started with.
func (s *Store) DeleteStream(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, error) {
	op := func() string { return fmt.Sprintf("%s delete of %s", req.Mode, req.Stream) }
	if err := ctxErr(ctx, op); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	if err := lifecycle.ValidateDelete(req); err != nil {
		return lifecycle.DeleteResult{}, fmt.Errorf("memory: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return lifecycle.DeleteResult{}, closedErr(op())
	}
	if err := ctxErr(ctx, op); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	st := s.streams[req.Stream]
	if st == nil || st.version() == 0 {
		return lifecycle.DeleteResult{}, fmt.Errorf("memory: %s: the stream has no records: %w", op(), runtime.ErrNotFound)
	}
	if st.tomb != nil && (st.tomb.Mode == runtime.HardDelete || req.Mode == runtime.SoftDelete) {
		return lifecycle.DeleteResult{Tombstone: *st.tomb, Already: true}, nil
	}
	events := uint64(len(st.positions))
	lastEvent := st.version()
	if st.tomb != nil {
		events-- // the soft delete's tombstone
		lastEvent = st.tomb.Events
	}
	res := lifecycle.DeleteResult{
		Tombstone: runtime.Tombstone{Stream: req.Stream, Mode: req.Mode, Version: st.version() + 1, Events: lastEvent},
		Events:    events,
	}
	var keys []string
	// live are the stream's positions a truncation has not removed already.
	live := st.positions
	if i, _ := slices.BinarySearch(live, s.truncated+1); s.truncated > 0 {
		live = live[i:]
	}
	if req.Mode == runtime.HardDelete {
		res.Tombstone.Removed = uint64(len(live))
		_, res.Snapshot = s.snapshots[req.Stream]
		for k := range s.idemByStream[req.Stream] {
			keys = append(keys, k)
		}
		res.IdempotencyKeys = uint64(len(keys))
		for _, pos := range live {
			res.Bytes += int64(len(at(s.chunks, pos).data))
		}
	}
	if req.DryRun {
		return res, nil
	}

	if req.Mode == runtime.HardDelete {
		s.removeEntries(live)
		s.removed += uint64(len(live))
		delete(s.snapshots, req.Stream)
		for _, k := range keys {
			s.dropKey(k)
		}
		st.base, st.positions = st.version(), nil
	}
	res.Tombstone.Time = storekit.NormalizeTime(time.Time{}, s.now)
	res.Tombstone.Position = s.head + 1
	rec := lifecycle.TombstoneRecord(res.Tombstone)
	i0 := s.head
	if i0>>chunkShift == uint64(len(s.chunks)) {
		s.chunks = append(s.chunks, new([chunkSize]entry))
	}
	s.chunks[i0>>chunkShift][i0&(chunkSize-1)] = entry{
		id: runtime.NewEventID(), stream: rec.Stream, version: rec.Version, name: rec.Name, schema: rec.Schema,
		time: rec.Time, data: s.storeBody(rec.Data),
	}
	s.head++
	st.positions = append(st.positions, s.head)
	t := res.Tombstone
	st.tomb = &t
	if s.waiting.Load() {
		s.waiting.Store(false)
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return res, nil
}

// removeEntries marks the entries at positions gone. Readers walk chunk
// lists without the lock, so every chunk touched is replaced by a copy in a
// new chunk list: a reader keeps the list, and the entries, it started
// with. The bodies are dropped, never cleared: strings decoded from
// VisitStream's Stable views may alias them.
func (s *Store) removeEntries(positions []uint64) {
	chunks := slices.Clone(s.chunks)
	copied := make(map[uint64]bool)
	for _, pos := range positions {
		c := (pos - 1) >> chunkShift
		if !copied[c] {
			cp := *chunks[c]
			chunks[c] = &cp
			copied[c] = true
		}
		chunks[c][(pos-1)&(chunkSize-1)] = entry{gone: true}
	}
	s.chunks = chunks
}
