package memory

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// Option configures New.
type Option func(*Store)

// WithIdempotencyTTL makes idempotency keys expire ttl after they were
// recorded (see lifecycle.Retention); 0, the default, keeps them for ever.
// Choose a ttl longer than the longest time a client may retry a command.
func WithIdempotencyTTL(ttl time.Duration) Option {
	return func(s *Store) { s.keyTTL = max(ttl, 0) }
}

// WithClock sets the clock that stamps events and idempotency records
// appended with a zero time and that decides when keys expire (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

func newStore(opts []Option, s *Store) *Store {
	for _, o := range opts {
		o(s)
	}
	return s
}

var _ lifecycle.Retention = (*Store)(nil)

// liveKey returns the record of key unless it is missing or has expired at
// now; an expired record is removed. The caller holds s.mu for writing.
func (s *Store) liveKey(key string, now time.Time) (runtime.IdempotencyRecord, bool) {
	rec, ok := s.idempotency[key]
	if ok && lifecycle.IdempotencyExpired(rec, s.keyTTL, now) {
		s.dropKey(key)
		return rec, false
	}
	return rec, ok
}

// PurgeExpiredKeys removes every expired idempotency record and returns
// how many it removed. See lifecycle.Retention.
func (s *Store) PurgeExpiredKeys(ctx context.Context) (uint64, error) {
	const op = "purge expired idempotency keys"
	if err := storekit.ContextErr(ctx, op); err != nil {
		return 0, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, closedErr(op)
	}
	if s.keyTTL <= 0 {
		return 0, nil
	}
	var n uint64
	for k, rec := range s.idempotency {
		if lifecycle.IdempotencyExpired(rec, s.keyTTL, now) {
			s.dropKey(k)
			n++
		}
	}
	return n, nil
}

// Truncated returns the last position TruncateLog removed, 0 if none.
func (s *Store) Truncated(ctx context.Context) (uint64, error) {
	if err := storekit.ContextErr(ctx, "truncated"); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, closedErr("truncated")
	}
	return s.truncated, nil
}

// TruncateLog removes the events at positions ≤ through (see
// lifecycle.Retention). The chunks of the log that hold only removed events
// are released; readers already iterating keep what they had.
func (s *Store) TruncateLog(ctx context.Context, through uint64) (lifecycle.TruncateResult, error) {
	op := fmt.Sprintf("truncate the log through position %d", through)
	if err := storekit.ContextErr(ctx, op); err != nil {
		return lifecycle.TruncateResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return lifecycle.TruncateResult{}, closedErr(op)
	}
	if through <= s.truncated {
		return lifecycle.TruncateResult{Through: s.truncated}, nil
	}
	if through >= s.head {
		return lifecycle.TruncateResult{}, fmt.Errorf("memory: %s: %w: the head is %d and the newest event is always kept", op, runtime.ErrInvalid, s.head)
	}
	res := lifecycle.TruncateResult{Through: through}
	for pos := s.truncated + 1; pos <= through; pos++ {
		if !at(s.chunks, pos).gone { // hard deletes counted theirs (delete.go)
			res.Removed++
		}
	}
	// Readers hold the old chunk list without the lock: give them a new
	// one instead of changing the old.
	chunks := make([]*[chunkSize]entry, len(s.chunks))
	copy(chunks, s.chunks)
	for i := range chunks {
		if uint64(i+1)*chunkSize > through {
			break
		}
		chunks[i] = nil
	}
	s.chunks = chunks
	s.removed += res.Removed
	s.truncated = through
	return res, nil
}

// truncatedRead returns the *runtime.TruncatedError of a read of stream
// after version after, from positions[from] on (the version base+from+1),
// when that event was truncated; positions are the stream's from version
// base+1 (base is nonzero after a hard delete), from < len(positions).
func truncatedRead(stream runtime.StreamID, positions []uint64, after, base, from, truncated uint64) error {
	if truncated == 0 || positions[from] > truncated {
		return nil
	}
	through := sort.Search(len(positions), func(i int) bool { return positions[i] > truncated })
	return &runtime.TruncatedError{Stream: stream, After: after, Through: base + uint64(through)}
}

var _ lifecycle.CheckpointLister = (*Store)(nil)

// Checkpoints yields every checkpoint, by name.
func (s *Store) Checkpoints(ctx context.Context) iter.Seq2[lifecycle.CheckpointInfo, error] {
	return func(yield func(lifecycle.CheckpointInfo, error) bool) {
		if err := storekit.ContextErr(ctx, "list checkpoints"); err != nil {
			yield(lifecycle.CheckpointInfo{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(lifecycle.CheckpointInfo{}, closedErr("list checkpoints"))
			return
		}
		out := make([]lifecycle.CheckpointInfo, 0, len(s.checkpoints))
		for name, pos := range s.checkpoints {
			out = append(out, lifecycle.CheckpointInfo{Name: name, Position: pos})
		}
		s.mu.RUnlock()
		slices.SortFunc(out, func(a, b lifecycle.CheckpointInfo) int { return strings.Compare(a.Name, b.Name) })
		for _, c := range out {
			if !yield(c, nil) {
				return
			}
		}
	}
}
