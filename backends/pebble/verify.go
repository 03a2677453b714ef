package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// Kinds of problem that Verify reports (storekit.VerifyProblem.Kind). The
// values are stable: tools may match on them. The kinds every backend
// shares are runtime's Problem* constants, repeated here.
const (
	ProblemFormat        = "format"                     // the format key is missing, unreadable or of another version
	ProblemCounters      = "counters"                   // the counters key is unreadable or disagrees with the data
	ProblemUnknownKey    = "unknown-key"                // a key outside the layout, or of the wrong shape
	ProblemRecord        = storekit.ProblemRecord       // an event record does not decode, or claims another position
	ProblemPositionGap   = storekit.ProblemPositionGap  // global positions are not exactly 1..head
	ProblemIndexMissing  = storekit.ProblemIndexMissing // an event has no stream index entry pointing at it
	ProblemIndexDangling = "index-dangling"             // a stream index entry points at a missing event
	ProblemIndexMismatch = "index-mismatch"             // a stream index entry points at an event of another stream or version
	ProblemVersionGap    = storekit.ProblemVersionGap   // a stream's versions do not run 1, 2, 3, … without holes
	ProblemVersionOrder  = storekit.ProblemVersionOrder // a stream's positions do not increase with its versions
	ProblemSnapshot      = storekit.ProblemSnapshot     // a snapshot does not decode or is ahead of its stream
	ProblemIdempotency   = storekit.ProblemIdempotency  // an idempotency record does not decode or points past its stream
	ProblemCheckpoint    = storekit.ProblemCheckpoint   // a checkpoint does not decode or is past the head
)

// Names of the Pebble-specific counts in storekit.VerifyReport.Extra.
const (
	// VerifyKeys counts every key walked.
	VerifyKeys = "keys"
	// VerifyIndexEntries counts the stream index entries.
	VerifyIndexEntries = "index_entries"
)

// Store implements storekit.Verifier and storekit.StreamLister.
var (
	_ storekit.Verifier     = (*Store)(nil)
	_ storekit.StreamLister = (*Store)(nil)
)

// Verify walks every key and value of the open store in a consistent
// snapshot and checks the layout of docs/storage.md: every record decodes
// and its checksum matches; global positions are exactly 1..head; every
// event has the stream index entry that points at it and every index entry
// points at its event; each stream's versions run 1..n with increasing
// positions; snapshots, idempotency records and checkpoints decode and do
// not point past their stream or the head; the stored counters match what
// was counted; and no key lies outside the layout.
//
// The report's Extra holds the keys walked (VerifyKeys) and the stream
// index entries (VerifyIndexEntries). Problems go into the report; the
// error is only for a walk that could not be completed (a closed store, a
// done context, an I/O error). Writers may continue meanwhile: the
// snapshot isolates the walk from them.
func (s *Store) Verify(ctx context.Context) (storekit.VerifyReport, error) {
	if err := s.enter(ctx, "verify"); err != nil {
		return storekit.VerifyReport{}, err
	}
	defer s.mu.RUnlock()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return verify(ctx, snap)
}

// VerifyDir verifies the store in dir without opening it as a Store: it
// opens the Pebble database read-only, so it also works on a store that
// Open refuses (for example one whose counters are damaged). The directory
// must not be open in any process (the error then wraps ErrLocked). Of the
// options, only WithFS and WithLogger apply.
func VerifyDir(ctx context.Context, dir string, opts ...Option) (storekit.VerifyReport, error) {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	if err := storekit.ContextErr(ctx, "verify "+dir); err != nil {
		return storekit.VerifyReport{}, err
	}
	if _, err := o.fs.Stat(dir); err != nil {
		return storekit.VerifyReport{}, fmt.Errorf("cqrsgen/pebble: verify %q: %w", dir, err)
	}
	lock, err := pebbledb.LockDirectory(dir, o.fs)
	if err != nil {
		return storekit.VerifyReport{}, fmt.Errorf("%w: %q (in this or another process): %v", ErrLocked, dir, err)
	}
	defer lock.Close()
	s := &Store{dir: dir}
	db, err := pebbledb.Open(dir, &pebbledb.Options{
		FS:       o.fs,
		ReadOnly: true,
		Lock:     lock,
		Logger:   &logger{s: s, l: o.logger},
	})
	if err != nil {
		return storekit.VerifyReport{}, fmt.Errorf("cqrsgen/pebble: verify %q: %w", dir, err)
	}
	defer db.Close()
	return verify(ctx, db)
}

// kvReader is what verify needs of a DB or a snapshot.
type kvReader interface {
	NewIter(o *pebbledb.IterOptions) (*pebbledb.Iterator, error)
	Get(key []byte) ([]byte, io.Closer, error)
}

// getCopy returns a copy of the value at key, nil with ok=false when the
// key does not exist.
func getCopy(r kvReader, key []byte) ([]byte, bool, error) {
	v, c, err := r.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, c.Close()
}

// parseStreamKey reads the injective stream encoding from the front of b
// and returns the stream and the rest.
func parseStreamKey(b []byte) (runtime.StreamID, []byte, bool) {
	r := reader{b: b}
	var s runtime.StreamID
	s.Type = string(r.bytes())
	s.ID = string(r.bytes())
	if r.err != nil || s.Type == "" || s.ID == "" {
		return runtime.StreamID{}, nil, false
	}
	return s, r.b, true
}

// verifier holds the walk's state.
type verifier struct {
	r   kvReader
	rep *storekit.VerifyReport

	keys, indexEntries uint64 // reported in rep.Extra

	nextPos   uint64 // the position the next event key should have
	truncated uint64 // the truncation mark: events up to it are gone

	// the stream index entry before the current one
	prevStream []byte
	prevVer    uint64
	prevPos    uint64
	prevID     runtime.StreamID // prevStream parsed

	// cross selects the lookups between events and index entries; without
	// it, events and entries sum the hashes of their triples.
	cross           bool
	seed            maphash.Seed
	events, entries tripleSum
	hbuf            []byte
	slab            slab

	// holes are the runs of positions hard deletes removed, in order; the
	// walk reads them (h keys) before the event records (p keys).
	holes [][2]uint64
}

// tripleSum is an order-free digest of a set of (stream, version,
// position) triples: their count and the sum of their hashes.
type tripleSum struct{ n, sum uint64 }

// add adds the triple whose stream key (appendStreamKey) is sk.
func (v *verifier) add(t *tripleSum, sk []byte, ver, pos uint64) {
	v.hbuf = append(v.hbuf[:0], sk...)
	v.hbuf = binary.BigEndian.AppendUint64(v.hbuf, ver)
	v.hbuf = binary.BigEndian.AppendUint64(v.hbuf, pos)
	t.n++
	t.sum += maphash.Bytes(v.seed, v.hbuf)
}

// verify walks every key once. It checks that the event records and the
// stream index entries describe the same (stream, version, position)
// triples by comparing an order-free sum of their hashes, not with a
// lookup per event and per entry (two random reads each, which made
// verification 13x slower than a scan). Only when the sums differ does it
// walk again with those lookups, to name each damaged entry.
func verify(ctx context.Context, r kvReader) (storekit.VerifyReport, error) {
	rep, matched, err := verifyWalk(ctx, r, false)
	if err != nil || matched {
		return rep, err
	}
	rep, _, err = verifyWalk(ctx, r, true)
	return rep, err
}

// verifyWalk is one walk of verify; cross makes it look up, for every
// event, its index entry and, for every index entry, its event. matched
// reports that the events and the index entries hold the same triples.
func verifyWalk(ctx context.Context, r kvReader, cross bool) (storekit.VerifyReport, bool, error) {
	v, err := verifyKeys(ctx, r, cross)
	if err != nil {
		return storekit.VerifyReport{}, false, err
	}
	return *v.rep, v.events == v.entries, nil
}

func verifyKeys(ctx context.Context, r kvReader, cross bool) (*verifier, error) {
	v := &verifier{r: r, rep: &storekit.VerifyReport{}, nextPos: 1, cross: cross, seed: maphash.MakeSeed()}
	fail := func(err error) (*verifier, error) { return nil, err }
	head, err := v.lastPosition()
	if err != nil {
		return fail(err)
	}
	v.rep.Head = head
	it, err := r.NewIter(nil)
	if err != nil {
		return fail(fmt.Errorf("cqrsgen/pebble: verify: %w", err))
	}
	var stored *counters
	sawFormat := false
	for ok := it.First(); ok; ok = it.Next() {
		if v.keys%1024 == 0 {
			if err := storekit.ContextErr(ctx, "verify"); err != nil {
				_ = it.Close()
				return fail(err)
			}
		}
		v.keys++
		k := it.Key()
		val, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fail(fmt.Errorf("cqrsgen/pebble: verify: key %x: %w", k, err))
		}
		switch {
		case bytes.Equal(k, keyFormat):
			sawFormat = true
			if ver, n := binary.Uvarint(val); n <= 0 || n != len(val) {
				v.rep.Add(storekit.VerifyProblem{Kind: ProblemFormat, Key: k, Detail: fmt.Sprintf("unreadable format value %x", val)})
			} else if ver != FormatVersion {
				v.rep.Add(storekit.VerifyProblem{Kind: ProblemFormat, Key: k, Detail: fmt.Sprintf("format version %d, this build reads %d", ver, FormatVersion)})
			}
		case bytes.Equal(k, keyTruncated):
			v.truncation(k, val)
		case bytes.Equal(k, keyCounters):
			c, err := decodeCounters(val)
			if err != nil {
				v.rep.Add(storekit.VerifyProblem{Kind: ProblemCounters, Key: k, Detail: "counters do not decode: " + err.Error()})
			} else {
				stored = &c
			}
		case len(k) == 0:
			v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "empty key"})
		default:
			if err := v.key(k, val); err != nil {
				_ = it.Close()
				return fail(err)
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fail(fmt.Errorf("cqrsgen/pebble: verify: %w", err))
	}
	if !sawFormat {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemFormat, Key: keyFormat, Detail: "the format key is missing"})
	}
	if v.keys > 0 && stored == nil {
		if _, ok, _ := getCopy(r, keyCounters); !ok {
			v.rep.Add(storekit.VerifyProblem{Kind: ProblemCounters, Key: keyCounters, Detail: "the counters key is missing"})
		}
	}
	if stored != nil {
		v.checkCounters(*stored)
	}
	v.rep.Extra = map[string]uint64{VerifyKeys: v.keys, VerifyIndexEntries: v.indexEntries}
	if v.truncated > 0 {
		v.rep.Extra[VerifyTruncated] = v.truncated
	}
	return v, nil
}

func (v *verifier) lastPosition() (uint64, error) {
	it, err := v.r.NewIter(&pebbledb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}})
	if err != nil {
		return 0, fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	var head uint64
	if it.Last() && len(it.Key()) == 9 {
		head = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	return head, nil
}

func (v *verifier) checkCounters(c counters) {
	r := v.rep
	for _, x := range []struct {
		name          string
		stored, found uint64
	}{
		{"events", c.Events, r.Events},
		{"streams", c.Streams, r.Streams},
		{"snapshots", c.Snapshots, r.Snapshots},
		{"checkpoints", c.Checkpoints, r.Checkpoints},
		{"idempotency keys", c.IdempotencyKeys, r.IdempotencyKeys},
	} {
		if x.stored != x.found {
			r.Add(storekit.VerifyProblem{Kind: ProblemCounters, Key: keyCounters,
				Detail: fmt.Sprintf("the counters say %d %s, the walk found %d", x.stored, x.name, x.found)})
		}
	}
}

// key checks one key other than the meta keys.
func (v *verifier) key(k, val []byte) error {
	switch k[0] {
	case tagEvent:
		return v.event(k, val)
	case tagStream:
		return v.index(k, val)
	case tagSnapshot:
		return v.snapshot(k, val)
	case tagIdem:
		return v.idem(k, val)
	case tagCheckpoint:
		v.checkpoint(k, val)
		return nil
	case tagDeleted:
		return v.deleted(k, val)
	case tagHoles:
		v.hole(k, val)
		return nil
	}
	v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "key outside the store's layout"})
	return nil
}

func (v *verifier) event(k, val []byte) error {
	if len(k) != 9 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "event key is not 9 bytes"})
		return nil
	}
	v.rep.Events++
	pos := binary.BigEndian.Uint64(k[1:])
	v.skipHoles(pos)
	if pos != v.nextPos {
		detail := fmt.Sprintf("positions %d to %d are missing", v.nextPos, pos-1)
		if pos < v.nextPos || pos == 0 {
			detail = fmt.Sprintf("position %d out of sequence (expected %d)", pos, v.nextPos)
		} else if pos == v.nextPos+1 {
			detail = fmt.Sprintf("position %d is missing", v.nextPos)
		}
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemPositionGap, Position: pos, Detail: detail})
	}
	v.nextPos = pos + 1
	rec, err := decodeRecordOf(val, nil, &v.slab)
	if err == nil && rec.Position != pos {
		err = fmt.Errorf("the record claims position %d", rec.Position)
	}
	if err == nil && (rec.Stream.Type == "" || rec.Stream.ID == "" || rec.Version == 0 || rec.Name == "") {
		err = fmt.Errorf("the record has an empty stream, name or version")
	}
	if err != nil {
		p := storekit.VerifyProblem{Kind: ProblemRecord, Key: k, Position: pos, Detail: "event record does not decode: " + err.Error()}
		if len(val) > 4 {
			if st, ver, ok := peekRecordHeader(val[:len(val)-4]); ok && st.Type != "" && st.ID != "" {
				p.Stream, p.Version = st, ver
				p.Detail += " (stream and version as read from the damaged record)"
			}
		}
		v.rep.Add(p)
		return nil
	}
	if !v.cross {
		v.add(&v.events, appendStreamKey(v.hbuf[:0], rec.Stream), rec.Version, pos)
		return nil
	}
	ik := streamIndexKey(nil, rec.Stream, rec.Version)
	iv, ok, err := getCopy(v.r, ik)
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	switch {
	case !ok:
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIndexMissing, Key: ik, Stream: rec.Stream, Version: rec.Version, Position: pos,
			Detail: "the event has no stream index entry"})
	case len(iv) != 8:
		// reported when the walk reaches the index entry
	case binary.BigEndian.Uint64(iv) != pos:
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIndexMissing, Key: ik, Stream: rec.Stream, Version: rec.Version, Position: pos,
			Detail: fmt.Sprintf("the stream index entry points at position %d instead", binary.BigEndian.Uint64(iv))})
	}
	return nil
}

func (v *verifier) index(k, val []byte) error {
	v.indexEntries++
	if len(k) < 1+8 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "malformed stream index key"})
		return nil
	}
	sk := k[1 : len(k)-8]
	same := v.prevStream != nil && bytes.Equal(sk, v.prevStream)
	stream := v.prevID
	if !same {
		// Parse (and allocate) the stream only where a new one starts.
		st, rest, ok := parseStreamKey(k[1:])
		if !ok || len(rest) != 8 {
			v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "malformed stream index key"})
			return nil
		}
		stream = st
		v.rep.Streams++
		v.prevStream = append(v.prevStream[:0], sk...)
		v.prevID = st
		v.prevVer, v.prevPos = 0, 0
	}
	ver := binary.BigEndian.Uint64(k[len(k)-8:])
	if len(val) != 8 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Stream: stream, Version: ver,
			Detail: fmt.Sprintf("stream index value is %d bytes, not 8", len(val))})
		v.prevVer = ver
		return nil
	}
	pos := binary.BigEndian.Uint64(val)
	if ver != v.prevVer+1 && !(v.prevVer == 0 && v.hardDeletedAt(sk, ver)) {
		detail := fmt.Sprintf("version %d follows version %d", ver, v.prevVer)
		if v.prevVer == 0 {
			detail = fmt.Sprintf("the stream starts at version %d", ver)
		}
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemVersionGap, Key: k, Stream: stream, Version: ver, Position: pos, Detail: detail})
	}
	if v.prevPos != 0 && pos <= v.prevPos {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemVersionOrder, Key: k, Stream: stream, Version: ver, Position: pos,
			Detail: fmt.Sprintf("position %d is not after the previous version's position %d", pos, v.prevPos)})
	}
	v.prevVer, v.prevPos = ver, pos
	if pos <= v.truncated {
		return nil // the event was truncated; the entry keeps the version
	}
	if !v.cross {
		v.add(&v.entries, sk, ver, pos)
		return nil
	}
	ev, ok, err := getCopy(v.r, eventKey(nil, pos))
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	if !ok {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIndexDangling, Key: k, Stream: stream, Version: ver, Position: pos,
			Detail: "the stream index entry points at a missing event"})
		return nil
	}
	rec, err := decodeRecord(ev)
	if err != nil {
		return nil // reported with the event record
	}
	if rec.Stream != stream || rec.Version != ver {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIndexMismatch, Key: k, Stream: stream, Version: ver, Position: pos,
			Detail: fmt.Sprintf("the event at position %d belongs to %s version %d", pos, rec.Stream, rec.Version)})
	}
	return nil
}

// streamHeadOf returns the stream's last indexed version.
func (v *verifier) streamHeadOf(stream runtime.StreamID) (uint64, error) {
	prefix := streamIndexPrefix(nil, stream)
	it, err := v.r.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	var ver uint64
	if it.Last() && len(it.Key()) == len(prefix)+8 {
		ver = binary.BigEndian.Uint64(it.Key()[len(prefix):])
	}
	return ver, errors.Join(it.Error(), it.Close())
}

func (v *verifier) snapshot(k, val []byte) error {
	v.rep.Snapshots++
	stream, rest, ok := parseStreamKey(k[1:])
	if !ok || len(rest) != 0 {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemUnknownKey, Key: k, Detail: "malformed snapshot key"})
		return nil
	}
	snap, err := decodeSnapshot(stream, val)
	if err != nil {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemSnapshot, Key: k, Stream: stream, Detail: "snapshot does not decode: " + err.Error()})
		return nil
	}
	head, err := v.streamHeadOf(stream)
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	if snap.Version > head {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemSnapshot, Key: k, Stream: stream, Version: snap.Version,
			Detail: fmt.Sprintf("snapshot at version %d is ahead of the stream's version %d", snap.Version, head)})
	}
	return nil
}

func (v *verifier) idem(k, val []byte) error {
	v.rep.IdempotencyKeys++
	key := string(k[1:])
	rec, err := decodeIdem(key, val)
	if err != nil {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIdempotency, Key: k, Detail: fmt.Sprintf("idempotency record %q does not decode: %v", key, err)})
		return nil
	}
	if rec.Stream.Type == "" || rec.Stream.ID == "" {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIdempotency, Key: k, Detail: fmt.Sprintf("idempotency record %q names an empty stream", key)})
		return nil
	}
	head, err := v.streamHeadOf(rec.Stream)
	if err != nil {
		return fmt.Errorf("cqrsgen/pebble: verify: %w", err)
	}
	if rec.Version > head || rec.Position > v.rep.Head {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemIdempotency, Key: k, Stream: rec.Stream, Version: rec.Version, Position: rec.Position,
			Detail: fmt.Sprintf("idempotency record %q points past its stream (version %d) or the head (position %d)", key, head, v.rep.Head)})
	}
	return nil
}

func (v *verifier) checkpoint(k, val []byte) {
	v.rep.Checkpoints++
	name := string(k[1:])
	p, err := decodeCheckpoint(val)
	if err != nil {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemCheckpoint, Key: k, Detail: fmt.Sprintf("checkpoint %q does not decode: %v", name, err)})
		return
	}
	if p > v.rep.Head {
		v.rep.Add(storekit.VerifyProblem{Kind: ProblemCheckpoint, Key: k, Position: p,
			Detail: fmt.Sprintf("checkpoint %q is past the head %d", name, v.rep.Head)})
	}
}
