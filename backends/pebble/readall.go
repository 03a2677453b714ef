package pebble

import (
	"context"
	"encoding/binary"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// ReadAll decodes the records it yields in batches, each under one lock of
// its tracked iterator, into an array on its own stack: a lock and an
// unlock per record cost as much as a fifth of a record's decoding, and a
// Record returned through two calls is copied twice. The first batch is
// small and each next one twice the last, up to allBatchMax, so that a
// caller that stops after a few records (a catch-up that is already at
// the head) has few decoded for nothing.
const (
	allBatchFirst = 4
	allBatchMax   = 32
)

// readAll runs ReadAll's loop over t, an iterator bounded to the records
// to read; the caller releases t.
func (s *Store) readAll(ctx context.Context, t *trackedIter, yield func(runtime.Record, error) bool) {
	src := batchSource{t: t}
	s.yieldBatches(ctx, &src, opReadAll, yield)
}

// batchSource is what yieldBatches decodes from: one stream's records
// through stream (ReadStream), or, when stream is nil, the records under
// t (ReadAll). It is a concrete type, not a func, so that the batch array
// yieldBatches passes it stays on the stack: handed to a func value, the
// array (32 Records, 4.6 KiB) escaped to the heap and was allocated,
// zeroed and written through write barriers on every read.
type batchSource struct {
	stream *streamReader
	t      *trackedIter
	slab   slab // ReadAll's copies; a stream read uses its reader's
}

// fill decodes up to len(recs) records under one lock of the iterators
// (from the first when first); see streamReader.fill and allFill.
func (b *batchSource) fill(first bool, recs []runtime.Record) (n int, done bool, err error) {
	if b.stream != nil {
		return b.stream.fill(first, recs)
	}
	return allFill(b.t, first, recs, &b.slab)
}

// yieldBatches runs the loop ReadAll and ReadStream share: src decodes up
// to len(recs) records under one lock of src.t (from the first when
// first), and the loop yields them, batches growing from allBatchFirst to
// allBatchMax. The batch was read before a Close or a cancellation that
// comes while the caller holds a record, but the read ends at the next
// record as it did when each record took the lock.
func (s *Store) yieldBatches(ctx context.Context, src *batchSource, op func() string, yield func(runtime.Record, error) bool) {
	var recs [allBatchMax]runtime.Record
	t := src.t
	size := allBatchFirst
	for first := true; ; first = false {
		if ctx.Err() != nil {
			yield(runtime.Record{}, storekit.ContextErr(ctx, op()))
			return
		}
		n, done, err := src.fill(first, recs[:size])
		for i := range n {
			if i > 0 {
				if t.shut.Load() {
					yield(runtime.Record{}, errStoreClosed)
					return
				}
				if ctx.Err() != nil {
					yield(runtime.Record{}, storekit.ContextErr(ctx, op()))
					return
				}
			}
			if !yield(recs[i], nil) {
				return
			}
		}
		if done && err == nil {
			err = s.finish(t, op)
		}
		if err != nil {
			yield(runtime.Record{}, err)
			return
		}
		if done {
			return
		}
		size = min(2*size, allBatchMax)
	}
}

// allFill moves t's iterator (to its first record when first) over up to
// len(recs) records and decodes them into recs, holding t.mu for all of
// them. It returns how many it decoded, whether the read is over, and the
// error that ended it; the records before an error are valid.
func allFill(t *trackedIter, first bool, recs []runtime.Record, sl *slab) (n int, done bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, true, errStoreClosed
	}
	it := t.it
	for n < len(recs) {
		var ok bool
		if first {
			ok, first = it.First(), false
		} else {
			ok = it.Next()
		}
		if !ok {
			return n, true, nil
		}
		if err := decodeAt(&recs[n], it, sl); err != nil {
			return n, true, err
		}
		n++
	}
	return n, false, nil
}

// decodeAt decodes the record under it, a positioned iterator over event
// keys, into *rec; a corrupt record is a *runtime.DecodeError naming the
// stream and version the damaged bytes claim, when they still say.
func decodeAt(rec *runtime.Record, it *pebbledb.Iterator, sl *slab) error {
	k := it.Key()
	if len(k) != 9 {
		return &runtime.DecodeError{What: "event key", Err: fmt.Errorf("malformed key %x", k)}
	}
	pos := binary.BigEndian.Uint64(k[1:])
	v, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: read all at position %d: %w", pos, err)
	}
	err = decodeRecordInto(rec, v, nil, sl)
	if err == nil && rec.Position != pos {
		err = fmt.Errorf("record at position %d claims position %d", pos, rec.Position)
	}
	if err == nil {
		return nil
	}
	de := &runtime.DecodeError{Position: pos, What: "envelope", Err: err}
	if len(v) > 4 {
		if st, ver, ok := peekRecordHeader(v[:len(v)-4]); ok && st.Type != "" && st.ID != "" {
			de.Stream, de.Version = st, ver
			de.Err = fmt.Errorf("%w (stream and version as read from the damaged record)", err)
		}
	}
	return de
}
