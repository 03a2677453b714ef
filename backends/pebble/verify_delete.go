package pebble

import (
	"encoding/binary"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// What Verify checks of deletions (delete.go): every deletion marker points
// at its stream's tombstone, every hole key is a well-formed run, and the
// position gaps and late first versions that hard deletes leave are not
// reported when a hole or a hard tombstone accounts for them.

// hole records a run of positions removed by a hard delete.
func (v *verifier) hole(k, val []byte) {
	if len(k) != 9 || len(val) != 8 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "malformed hole key"})
		return
	}
	first, last := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(val)
	if first == 0 || last < first {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: fmt.Sprintf("hole %d..%d is not a run of positions", first, last)})
		return
	}
	v.holes = append(v.holes, [2]uint64{first, last})
}

// skipHoles moves the expected next position past the holes that start
// there, before the event at pos is checked against it.
func (v *verifier) skipHoles(pos uint64) {
	for len(v.holes) > 0 && v.holes[0][0] < pos {
		// A truncation may have removed the hole's start: then the log
		// starts inside it.
		if v.holes[0][0] <= v.nextPos && v.nextPos <= v.holes[0][1] {
			v.nextPos = v.holes[0][1] + 1
		}
		v.holes = v.holes[1:]
	}
}

// hardDeletedAt reports whether the stream with key sk was hard-deleted
// with its tombstone at version ver: its index then starts there.
func (v *verifier) hardDeletedAt(sk []byte, ver uint64) bool {
	val, ok, err := getCopy(v.r, deletedKey(sk))
	if err != nil || !ok {
		return false
	}
	pos, mode, t, err := decodeDeleted(val)
	if err != nil || mode != runtime.HardDelete {
		return false
	}
	if t != nil {
		return t.Version == ver
	}
	rv, ok, err := getCopy(v.r, eventKey(nil, pos))
	if err != nil || !ok {
		return false
	}
	rec, err := decodeRecord(rv)
	return err == nil && rec.Version == ver && runtime.IsTombstone(rec)
}

// deleted checks a deletion marker: it must point at a tombstone of its
// stream, in the mode it says.
func (v *verifier) deleted(k, val []byte) error {
	stream, rest, ok := parseStreamKey(k[1:])
	if !ok || len(rest) != 0 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "malformed deletion marker key"})
		return nil
	}
	pos, mode, marked, err := decodeDeleted(val)
	if err != nil {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemRecord, Key: k, Stream: stream, Detail: err.Error()})
		return nil
	}
	rv, ok, err := getCopy(v.r, eventKey(nil, pos))
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	if !ok && marked != nil {
		// The marker holds the tombstone: its record may be truncated.
		truncated, err := v.truncationMark()
		if err != nil {
			return err
		}
		if pos <= truncated {
			return nil
		}
	}
	var t runtime.Tombstone
	if ok {
		var rec runtime.Record
		if rec, err = decodeRecord(rv); err == nil {
			t, err = runtime.TombstoneOf(rec)
		}
	}
	if !ok || err != nil || t.Stream != stream || t.Mode != mode || marked != nil && t.Version != marked.Version {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemRecord, Key: k, Stream: stream, Position: pos,
			Detail: fmt.Sprintf("the deletion marker (%s) does not point at the stream's tombstone", mode)})
	}
	return nil
}

// truncationMark reads the truncation mark (deletion markers sort before
// it, so the walk has not met it yet).
func (v *verifier) truncationMark() (uint64, error) {
	val, ok, err := getCopy(v.r, keyTruncated)
	if err != nil {
		return 0, fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	if !ok {
		return 0, nil
	}
	pos, err := decodeTruncated(val)
	if err != nil {
		return 0, nil // reported when the walk reaches the mark
	}
	return pos, nil
}
