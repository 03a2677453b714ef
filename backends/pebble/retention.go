package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// Retention (see lifecycle.Retention): idempotency keys that expire, and
// truncation of the log.
//
// Keys. A record's expiry is computed from its Time and the store's TTL
// whenever it is read: the writer treats an expired record as absent (and
// a new one with the same key replaces it in the same batch), and
// LoadIdempotency reports it as not found. PurgeExpiredKeys deletes the
// expired records through the writer, which checks each again.
//
// Truncation. TruncateLog deletes the event records at positions ≤ through
// with one range deletion, in one batch with the new truncation mark
// (keyTruncated) and the counters: it is atomic, and Pebble reclaims the
// space as compactions pass over the range. The stream index is kept: it
// holds each stream's versions (so StreamVersion and appends are
// unaffected) and tells ReadStream which versions are gone.

// keyTruncated holds the last truncated position (absent: 0).
var keyTruncated = []byte("mtruncated")

const truncatedV1 = 1

// retention is the Store's retention state.
type retention struct {
	mu        sync.Mutex    // serialises TruncateLog calls
	truncated atomic.Uint64 // the last truncated position
	// deletes counts the applied hard deletes that removed event
	// records: a TruncateLog that counted its range before one of them
	// was applied recounts.
	deletes atomic.Uint64
}

// WithIdempotencyTTL makes idempotency keys expire ttl after they were
// recorded (see lifecycle.Retention); 0, the default, keeps them for ever.
// Choose a ttl longer than the longest time a client may retry a command.
// Expiry follows the clock of WithClock.
func WithIdempotencyTTL(ttl time.Duration) Option {
	return func(o *options) { o.keyTTL = max(ttl, 0) }
}

var _ lifecycle.Retention = (*Store)(nil)

func encodeTruncated(pos uint64) []byte {
	return seal(binary.AppendUvarint([]byte{truncatedV1}, pos))
}

func decodeTruncated(v []byte) (uint64, error) {
	body, err := unseal(v)
	if err != nil {
		return 0, err
	}
	if len(body) < 2 || body[0] != truncatedV1 {
		return 0, errTruncated
	}
	pos, n := binary.Uvarint(body[1:])
	if n <= 0 || 1+n != len(body) {
		return 0, errTruncated
	}
	return pos, nil
}

// loadTruncated restores the truncation mark at Open.
func (s *Store) loadTruncated() error {
	v, err := s.get(keyTruncated)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	pos, err := decodeTruncated(v)
	if err != nil {
		return &runtime.DecodeError{What: "truncation mark", Err: fmt.Errorf("%s: %w", s.dir, err)}
	}
	s.retention.truncated.Store(pos)
	return nil
}

// expired reports whether rec has expired; the writer then remembers the
// key, so that recording it again replaces the record without counting a
// new key.
func (w *writer) expired(rec runtime.IdempotencyRecord) bool {
	if !lifecycle.IdempotencyExpired(rec, w.s.opts.keyTTL, w.s.opts.now()) {
		return false
	}
	if w.expiredIdem == nil {
		w.expiredIdem = make(map[string]bool)
	}
	w.expiredIdem[rec.Key] = true
	return true
}

// replacesExpired reports whether recording key replaces an expired record.
func (w *writer) replacesExpired(key string) bool {
	if !w.expiredIdem[key] {
		return false
	}
	delete(w.expiredIdem, key)
	return true
}

// purgeBatch bounds the keys one purge commit deletes.
const purgeBatch = 10_000

// PurgeExpiredKeys deletes the expired idempotency records and returns how
// many it deleted. It scans the records, then has the writer delete each
// one that is still expired, up to purgeBatch per commit.
func (s *Store) PurgeExpiredKeys(ctx context.Context) (uint64, error) {
	const what = "purge expired idempotency keys"
	if s.opts.keyTTL <= 0 {
		if err := s.enter(ctx, what); err != nil {
			return 0, err
		}
		s.mu.RUnlock()
		return 0, nil
	}
	var total uint64
	var after []byte
	for {
		keys, more, err := s.expiredKeys(ctx, after)
		if err != nil {
			return total, err
		}
		if len(keys) > 0 {
			var n uint64
			err := s.submit(&op{kind: opFunc, ctx: ctx, fn: purgeKeys(keys, &n)})
			if err != nil {
				return total, err
			}
			total += n
			after = idemKey(keys[len(keys)-1])
		}
		if !more {
			return total, nil
		}
	}
}

// purgeKeys returns the writer's part of PurgeExpiredKeys: delete each of
// keys whose record is still expired, counting them in *n.
func purgeKeys(keys []string, n *uint64) func(*writer) error {
	return func(w *writer) error {
		for _, k := range keys {
			if _, fresh := w.newIdem[k]; fresh || w.purgedIdem[k] {
				continue
			}
			v, err := w.s.get(idemKey(k))
			if errors.Is(err, runtime.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("cqrsgen/pebble: purge expired idempotency keys: %w", err)
			}
			rec, err := decodeIdem(k, v)
			if err != nil || !lifecycle.IdempotencyExpired(rec, w.s.opts.keyTTL, w.s.opts.now()) {
				continue
			}
			_ = w.batch.Delete(idemKey(k), nil)
			w.ctr.IdempotencyKeys--
			*n++
			// Later ops of the group must not find it on disk.
			if w.purgedIdem == nil {
				w.purgedIdem = make(map[string]bool)
			}
			w.purgedIdem[k] = true
		}
		return nil
	}
}

// expiredKeys returns up to purgeBatch expired keys whose record keys
// sort after after (nil: from the first), and whether there may be more.
func (s *Store) expiredKeys(ctx context.Context, after []byte) ([]string, bool, error) {
	const op = "purge expired idempotency keys"
	lower := []byte{tagIdem}
	if after != nil {
		lower = append(append([]byte(nil), after...), 0)
	}
	t, err := s.newIter(ctx, func() string { return op }, &pebbledb.IterOptions{LowerBound: lower, UpperBound: []byte{tagIdem + 1}})
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = s.release(t) }()
	now := s.opts.now()
	var keys []string
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false, errStoreClosed
	}
	for ok := t.it.First(); ok; ok = t.it.Next() {
		k := string(t.it.Key()[1:])
		v, err := t.it.ValueAndErr()
		if err != nil {
			return nil, false, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
		}
		// A record that does not decode is left for verify to report.
		if rec, err := decodeIdem(k, v); err == nil && lifecycle.IdempotencyExpired(rec, s.opts.keyTTL, now) {
			keys = append(keys, k)
			if len(keys) == purgeBatch {
				return keys, true, nil
			}
		}
	}
	if err := t.it.Error(); err != nil {
		return nil, false, fmt.Errorf("cqrsgen/pebble: %s: %w", op, err)
	}
	return keys, false, nil
}

// Truncated returns the last truncated position, 0 if none.
func (s *Store) Truncated(ctx context.Context) (uint64, error) {
	if err := s.enter(ctx, "truncated"); err != nil {
		return 0, err
	}
	s.mu.RUnlock()
	return s.retention.truncated.Load(), nil
}

// TruncateLog deletes the events at positions ≤ through in one atomic
// batch (see lifecycle.Retention and the comment at the top of this file).
func (s *Store) TruncateLog(ctx context.Context, through uint64) (lifecycle.TruncateResult, error) {
	what := fmt.Sprintf("truncate the log through position %d", through)
	s.retention.mu.Lock()
	defer s.retention.mu.Unlock()
	cur := s.retention.truncated.Load()
	if through <= cur {
		if err := s.enter(ctx, what); err != nil {
			return lifecycle.TruncateResult{}, err
		}
		s.mu.RUnlock()
		return lifecycle.TruncateResult{Through: cur}, nil
	}
	// Count the records to delete before taking the writer role: they are
	// at or below an acknowledged position, so they are in the database
	// and no write changes them meanwhile.
	s.wmu.Lock()
	acked := s.acked
	s.wmu.Unlock()
	if through >= acked {
		if err := s.enter(ctx, what); err != nil {
			return lifecycle.TruncateResult{}, err
		}
		s.mu.RUnlock()
		return lifecycle.TruncateResult{}, fmt.Errorf("cqrsgen/pebble: %s: %w: the head is %d and the newest event is always kept", what, runtime.ErrInvalid, acked)
	}
	deletes := s.retention.deletes.Load()
	n, err := s.countEvents(ctx, cur, through)
	if err != nil {
		return lifecycle.TruncateResult{}, err
	}
	err = s.submit(&op{kind: opFunc, ctx: ctx, fn: func(w *writer) error {
		if through >= w.pos {
			return fmt.Errorf("cqrsgen/pebble: %s: %w: the head is %d and the newest event is always kept", what, runtime.ErrInvalid, w.pos)
		}
		if s.retention.deletes.Load() != deletes {
			// A hard delete applied since the count may have removed
			// records of the range, and subtracted them from the
			// counters itself.
			if n, err = w.countEvents(cur, through); err != nil {
				return err
			}
		}
		_ = w.batch.DeleteRange(eventKey(nil, cur+1), eventKey(nil, through+1), nil)
		_ = w.batch.Set(keyTruncated, encodeTruncated(through), nil)
		w.ctr.Events -= min(n, w.ctr.Events)
		// Published before the commit: a reader meanwhile is told the
		// versions are gone rather than finding them missing.
		s.retention.truncated.Store(through)
		return nil
	}})
	if err != nil {
		if errors.Is(err, runtime.ErrInvalid) {
			return lifecycle.TruncateResult{}, err
		}
		return lifecycle.TruncateResult{}, fmt.Errorf("cqrsgen/pebble: %s: %w", what, err)
	}
	return lifecycle.TruncateResult{Through: through, Removed: n}, nil
}

// countEvents counts the event records at positions in (after, through].
func (s *Store) countEvents(ctx context.Context, after, through uint64) (uint64, error) {
	op := func() string { return "count the events to truncate" }
	t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: eventKey(nil, after+1), UpperBound: eventKey(nil, through+1)})
	if err != nil {
		return 0, err
	}
	defer func() { _ = s.release(t) }()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, errStoreClosed
	}
	var n uint64
	for ok := t.it.First(); ok; ok = t.it.Next() {
		n++
		if n%4096 == 0 {
			if err := storekit.ContextErr(ctx, op()); err != nil {
				return 0, err
			}
		}
	}
	return n, t.it.Error()
}

// countEvents is Store.countEvents for the writer, which must not wait for
// the store's lock.
func (w *writer) countEvents(after, through uint64) (uint64, error) {
	it, err := w.s.db.NewIter(&pebbledb.IterOptions{LowerBound: eventKey(nil, after+1), UpperBound: eventKey(nil, through+1)})
	if err != nil {
		return 0, err
	}
	var n uint64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}

// truncatedRead returns the *runtime.TruncatedError of a read of stream
// after version after when the next version's event was truncated.
func (s *Store) truncatedRead(ctx context.Context, stream runtime.StreamID, after uint64) error {
	truncated := s.retention.truncated.Load()
	if truncated == 0 {
		return nil
	}
	op := func() string { return "read stream " + stream.String() }
	prefix := streamIndexPrefix(nil, stream)
	lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
	t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer func() { _ = s.release(t) }()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errStoreClosed
	}
	last := after // the last truncated version seen
	for ok := t.it.First(); ok; ok = t.it.Next() {
		v, err := t.it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
		}
		k := t.it.Key()
		if len(k) != len(prefix)+8 || len(v) != 8 {
			return &runtime.DecodeError{Stream: stream, What: "stream index", Err: fmt.Errorf("malformed entry %x", k)}
		}
		if binary.BigEndian.Uint64(v) > truncated {
			break
		}
		last = binary.BigEndian.Uint64(k[len(prefix):])
	}
	if err := t.it.Error(); err != nil {
		return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
	}
	if last == after {
		return nil
	}
	return &runtime.TruncatedError{Stream: stream, After: after, Through: last}
}

// expiredRecord reports whether a record LoadIdempotency read has expired.
func (s *Store) expiredRecord(rec runtime.IdempotencyRecord) bool {
	return lifecycle.IdempotencyExpired(rec, s.opts.keyTTL, s.opts.now())
}

// VerifyTruncated names the truncation mark (the last truncated position)
// in storekit.VerifyReport.Extra, present once the log was truncated.
const VerifyTruncated = "truncated"

// truncation reads the truncation mark for Verify. Its key sorts before
// every event and index key: the walk meets it first, and from then on
// expects the log to start after it and index entries at or below it to
// have no event.
func (v *verifier) truncation(k, val []byte) {
	pos, err := decodeTruncated(val)
	if err != nil {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "the truncation mark does not decode: " + err.Error()})
		return
	}
	v.truncated, v.nextPos = pos, pos+1
}

var _ lifecycle.CheckpointLister = (*Store)(nil)

// Checkpoints yields every checkpoint, in key (name) order. A checkpoint
// that does not decode ends the sequence with a *runtime.DecodeError.
func (s *Store) Checkpoints(ctx context.Context) iter.Seq2[lifecycle.CheckpointInfo, error] {
	return func(yield func(lifecycle.CheckpointInfo, error) bool) {
		op := func() string { return "list checkpoints" }
		t, err := s.newIter(ctx, op, &pebbledb.IterOptions{LowerBound: []byte{tagCheckpoint}, UpperBound: []byte{tagCheckpoint + 1}})
		if err != nil {
			yield(lifecycle.CheckpointInfo{}, err)
			return
		}
		defer func() { _ = s.release(t) }()
		// Read all under the iterator's lock, then yield: the caller may
		// call the store from its loop.
		var out []lifecycle.CheckpointInfo
		err = func() error {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.closed {
				return errStoreClosed
			}
			for ok := t.it.First(); ok; ok = t.it.Next() {
				name := string(t.it.Key()[1:])
				v, err := t.it.ValueAndErr()
				if err != nil {
					return fmt.Errorf("cqrsgen/pebble: %s: %w", op(), err)
				}
				pos, err := decodeCheckpoint(v)
				if err != nil {
					return &runtime.DecodeError{What: "checkpoint", Err: fmt.Errorf("%q: %w", name, err)}
				}
				out = append(out, lifecycle.CheckpointInfo{Name: name, Position: pos})
			}
			return t.it.Error()
		}()
		for _, c := range out {
			if !yield(c, nil) {
				return
			}
		}
		if err != nil {
			yield(lifecycle.CheckpointInfo{}, err)
		}
	}
}

// missingRecord is the error of a stream index entry whose event record is
// missing: a *runtime.TruncatedError when the record was truncated (by a
// truncation that committed while the read was under way: the mark is
// published before the commit; version is then the one known removed),
// corruption otherwise.
func (s *Store) missingRecord(stream runtime.StreamID, version, pos uint64) error {
	if pos <= s.retention.truncated.Load() {
		return &runtime.TruncatedError{Stream: stream, After: version - 1, Through: version}
	}
	return &runtime.DecodeError{Stream: stream, Version: version, Position: pos, What: "envelope",
		Err: errors.New("the stream index points to a missing event record")}
}
