package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// Deleting streams (see lifecycle.StreamDeleter). A delete goes through the
// write pipeline as a group of its own, so it is ordered with every append:
// an append checked after it sees the stream deleted, one checked before it
// is part of what it deletes. It writes, in one batch:
//
//   - the tombstone record at the next position, and its index entry;
//   - d<streamKey> → the tombstone's position (8 bytes), mode (1 byte),
//     version (8 bytes), time and counts: what the writer checks appends
//     against. It holds the whole tombstone because a truncation of the
//     log may remove the tombstone record while the stream stays deleted
//     (markers of 9 bytes, written before, hold position and mode only);
//   - for a hard delete: a range deletion of the stream's index, point or
//     range deletions of its event records (one range per run of
//     consecutive positions), deletions of its snapshot and idempotency
//     keys, and h<first:8> → last:8 for each removed run of positions, so
//     that Verify tells the holes from lost records.
//
// Pebble drops the deleted keys' bytes when a compaction rewrites the
// tables that hold them; DeleteStream compacts the deleted key spans at once
// (see compactDeleted), so the space is reclaimed when it returns, and
// removes the write-ahead logs that held them, including those Pebble
// keeps for reuse (purgeLogs).
const (
	tagDeleted = 'd' // d<streamKey>  → tombstone position:8, mode:1, version:8, time, events, removed
	tagHoles   = 'h' // h<first:8>    → last:8: positions a hard delete removed
)

var _ lifecycle.StreamDeleter = (*Store)(nil)

func deletedKey(sk []byte) []byte {
	return append([]byte{tagDeleted}, sk...)
}

func holeKey(first uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tagHoles}, first)
}

func encodeDeleted(t runtime.Tombstone) []byte {
	b := append(binary.BigEndian.AppendUint64(nil, t.Position), byte(t.Mode))
	b = binary.BigEndian.AppendUint64(b, t.Version)
	b = appendTime(b, t.Time)
	b = binary.AppendUvarint(b, t.Events)
	return binary.AppendUvarint(b, t.Removed)
}

// decodeDeleted decodes a deletion marker: the tombstone's position and
// mode, and the tombstone (without its Stream) when the marker holds it
// (nil for a marker of 9 bytes).
func decodeDeleted(v []byte) (uint64, runtime.DeleteMode, *runtime.Tombstone, error) {
	bad := func() (uint64, runtime.DeleteMode, *runtime.Tombstone, error) {
		return 0, 0, nil, fmt.Errorf("malformed deletion marker %x", v)
	}
	if len(v) < 9 || (v[8] != byte(runtime.SoftDelete) && v[8] != byte(runtime.HardDelete)) {
		return bad()
	}
	pos, mode := binary.BigEndian.Uint64(v), runtime.DeleteMode(v[8])
	if len(v) == 9 {
		return pos, mode, nil, nil
	}
	t := &runtime.Tombstone{Position: pos, Mode: mode}
	r := v[9:]
	if len(r) < 8 {
		return bad()
	}
	t.Version, r = binary.BigEndian.Uint64(r), r[8:]
	sec, n := binary.Varint(r)
	if n <= 0 {
		return bad()
	}
	nsec, m := binary.Uvarint(r[n:])
	if m <= 0 || nsec >= 1e9 {
		return bad()
	}
	t.Time, r = time.Unix(sec, int64(nsec)).UTC(), r[n+m:]
	if t.Events, n = binary.Uvarint(r); n <= 0 {
		return bad()
	}
	if t.Removed, m = binary.Uvarint(r[n:]); m <= 0 || n+m != len(r) {
		return bad()
	}
	return pos, mode, t, nil
}

// DeleteStream deletes a stream (see lifecycle.StreamDeleter). The tombstone
// is synced before it returns, even on a store opened WithNoSync. After a
// hard delete it removes every write-ahead log written before (purgeLogs)
// and compacts the deleted key spans, so that the removed events' and
// snapshot's bytes leave the tables: when it returns, no file of the
// directory holds the bytes. A failure of either is returned, the delete
// itself stands.
func (s *Store) DeleteStream(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, error) {
	if err := lifecycle.ValidateDelete(req); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	o := &op{kind: opDelete, ctx: ctx, del: &deleteOp{req: req}}
	if err := s.submit(o); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	d := o.del
	if req.DryRun || d.res.Already || req.Mode != runtime.HardDelete {
		return d.res, nil
	}
	if err := s.compactDeleted(ctx, d); err != nil {
		return d.res, fmt.Errorf("cqrsgen/pebble: %s delete of %s is committed, removing its bytes failed: %w", req.Mode, req.Stream, err)
	}
	return d.res, nil
}

// deleteOp is a delete's request, and the writer's answer with what it
// removed (for compactDeleted).
type deleteOp struct {
	req          lifecycle.DeleteRequest
	res          lifecycle.DeleteResult
	sk           []byte
	minPos, maxP uint64 // the span of the removed event records
}

// compactDeleted removes the write-ahead logs that held the removed
// records, kept for reuse or not (purgeLogs, whose flush also moves them
// into the tables), then compacts the spans a hard delete removed keys
// from: its event records, its snapshot and its stream index. The
// idempotency keys, which hold only the stream's name and positions, are
// left to Pebble's own compactions.
func (s *Store) compactDeleted(ctx context.Context, d *deleteOp) error {
	if err := s.enter(ctx, "compact"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.purgeLogs(); err != nil {
		return err
	}
	if d.minPos > 0 {
		if err := s.db.Compact(ctx, eventKey(nil, d.minPos), eventKey(nil, d.maxP+1), true); err != nil {
			return err
		}
	}
	if d.res.Snapshot {
		k := snapshotKey(d.req.Stream)
		if err := s.db.Compact(ctx, k, append(k, 0), false); err != nil {
			return err
		}
	}
	prefix := append([]byte{tagStream}, d.sk...)
	return s.db.Compact(ctx, prefix, prefixEnd(prefix), false)
}

// loadTombstone returns the tombstone of the stream with key sk, nil when
// the stream is not deleted. The caller holds mu or is the writer.
func (s *Store) loadTombstone(sk []byte, stream runtime.StreamID) (*runtime.Tombstone, error) {
	v, err := s.get(deletedKey(sk))
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pos, _, t, err := decodeDeleted(v)
	if err != nil {
		return nil, &runtime.DecodeError{Stream: stream, What: "deletion marker", Err: err}
	}
	if t != nil {
		t.Stream = stream
		return t, nil
	}
	rv, err := s.get(eventKey(nil, pos))
	if err != nil {
		return nil, &runtime.DecodeError{Stream: stream, Position: pos, What: "tombstone", Err: err}
	}
	rec, err := decodeRecord(rv)
	if err != nil {
		return nil, &runtime.DecodeError{Stream: stream, Position: pos, What: "tombstone", Err: err}
	}
	tomb, err := runtime.TombstoneOf(rec)
	if err != nil {
		return nil, err
	}
	return &tomb, nil
}

// delete is the writer's side of DeleteStream; it runs in a group of its
// own (see op.size).
func (w *writer) delete(o *op) error {
	d := o.del
	req := d.req
	d.sk = appendStreamKey(nil, req.Stream)
	h, err := w.head(d.sk, req.Stream)
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: delete %s: %w", req.Stream, err)
	}
	if h.version == 0 {
		return fmt.Errorf("cqrsgen/pebble: delete %s: the stream has no records: %w", req.Stream, runtime.ErrNotFound)
	}
	if h.tomb != nil && (h.tomb.Mode == runtime.HardDelete || req.Mode == runtime.SoftDelete) {
		d.res = lifecycle.DeleteResult{Tombstone: *h.tomb, Already: true}
		return nil
	}
	t := runtime.Tombstone{Stream: req.Stream, Mode: req.Mode, Version: h.version + 1, Events: h.version}
	res := lifecycle.DeleteResult{Events: h.version}
	if h.tomb != nil {
		t.Events, res.Events = h.tomb.Events, h.tomb.Events
	}
	var positions []uint64
	var keys [][]byte
	if req.Mode == runtime.HardDelete {
		if positions, err = w.streamPositions(d.sk); err != nil {
			return fmt.Errorf("cqrsgen/pebble: delete %s: %w", req.Stream, err)
		}
		// Records a truncation removed are gone already: neither counted
		// nor deleted again, and no hole is recorded for them.
		truncated := w.s.retention.truncated.Load()
		i, _ := slices.BinarySearch(positions, truncated+1)
		positions = positions[i:]
		t.Removed = uint64(len(positions))
		if _, err := w.s.get(snapshotKey(req.Stream)); err == nil {
			res.Snapshot = true
		} else if !errors.Is(err, runtime.ErrNotFound) {
			return fmt.Errorf("cqrsgen/pebble: delete %s: %w", req.Stream, err)
		}
		if keys, err = w.streamIdemKeys(req.Stream); err != nil {
			return fmt.Errorf("cqrsgen/pebble: delete %s: %w", req.Stream, err)
		}
		res.IdempotencyKeys = uint64(len(keys))
	}
	res.Tombstone = t
	if req.DryRun {
		d.res = res
		return nil
	}

	b := w.batch
	w.flushIndex()
	if req.Mode == runtime.HardDelete {
		prefix := streamIndexPrefix(nil, req.Stream)
		_ = b.DeleteRange(prefix, prefixEnd(prefix), nil)
		for i := 0; i < len(positions); {
			j := i
			for j+1 < len(positions) && positions[j+1] == positions[j]+1 {
				j++
			}
			first, last := positions[i], positions[j]
			if first == last {
				_ = b.Delete(eventKey(nil, first), nil)
			} else {
				_ = b.DeleteRange(eventKey(nil, first), eventKey(nil, last+1), nil)
			}
			_ = b.Set(holeKey(first), binary.BigEndian.AppendUint64(nil, last), nil)
			i = j + 1
		}
		if len(positions) > 0 {
			d.minPos, d.maxP = positions[0], positions[len(positions)-1]
			w.removed = true
		}
		if res.Snapshot {
			_ = b.Delete(snapshotKey(req.Stream), nil)
			w.ctr.Snapshots--
		}
		for _, k := range keys {
			_ = b.Delete(k, nil)
		}
		w.ctr.IdempotencyKeys -= res.IdempotencyKeys
		w.ctr.Events -= t.Removed
	}
	w.pos++
	t.Position = w.pos
	t.Time = storekit.NormalizeTime(o.clock(w.s.opts.now), nil)
	rec := lifecycle.TombstoneRecord(t)
	rec.EventID = runtime.NewEventID()
	_ = b.Set(eventKey(nil, t.Position), encodeRecord(nil, &rec, nil), nil)
	w.idx = append(w.idx, tagStream)
	w.idx = append(w.idx, d.sk...)
	w.idx = binary.BigEndian.AppendUint64(w.idx, t.Version)
	w.idx = binary.BigEndian.AppendUint64(w.idx, t.Position)
	w.idxKeyLens = append(w.idxKeyLens, 1+len(d.sk)+8)
	_ = b.Set(deletedKey(d.sk), encodeDeleted(t), nil)
	w.ctr.Events++
	w.needsSync = true
	h.version = t.Version
	h.tomb = &t
	res.Tombstone = t
	d.res = res
	return nil
}

// streamPositions returns the positions of every record of the stream with
// key sk, in version order.
func (w *writer) streamPositions(sk []byte) ([]uint64, error) {
	prefix := append([]byte{tagStream}, sk...)
	it, err := w.s.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	var out []uint64
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if len(v) != 8 {
			_ = it.Close()
			return nil, fmt.Errorf("malformed stream index entry %x", it.Key())
		}
		out = append(out, binary.BigEndian.Uint64(v))
	}
	return out, errors.Join(it.Error(), it.Close())
}

// streamIdemKeys returns the keys of the idempotency records that name
// stream. Keys are stored by key alone, so this reads them all: a hard
// delete costs a scan of the idempotency keys (see docs/storage.md). A
// record is decoded (and its checksum checked) only when its envelope
// starts with the stream's name, so the scan costs a prefix comparison
// per key.
func (w *writer) streamIdemKeys(stream runtime.StreamID) ([][]byte, error) {
	it, err := w.s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{tagIdem}, UpperBound: []byte{tagIdem + 1}})
	if err != nil {
		return nil, err
	}
	head := appendString(appendString([]byte{idemV1}, stream.Type), stream.ID)
	var out [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if !bytes.HasPrefix(v, head) {
			continue
		}
		k := it.Key()
		rec, err := decodeIdem(string(k[1:]), v)
		if err != nil {
			continue // a damaged record names no stream we can match; Verify reports it
		}
		if rec.Stream == stream {
			out = append(out, append([]byte(nil), k...))
		}
	}
	return out, errors.Join(it.Error(), it.Close())
}

// refuseDeleted returns a *runtime.DeletedError when stream is deleted: a
// snapshot saved after a hard delete would bring its state back.
func (w *writer) refuseDeleted(stream runtime.StreamID) error {
	sk := appendStreamKey(nil, stream)
	h, ok := w.heads[string(sk)]
	if !ok {
		t, err := w.s.loadTombstone(sk, stream)
		if err != nil || t == nil {
			return err
		}
		return &runtime.DeletedError{Tombstone: *t}
	}
	if h.tomb != nil {
		return &runtime.DeletedError{Tombstone: *h.tomb}
	}
	return nil
}
