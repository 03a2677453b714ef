package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"time"
	"unsafe"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Key layout (see docs/storage.md). Every key starts with a one-byte tag,
// so the key spaces never overlap.
const (
	tagMeta       = 'm' // m<name>                      → meta values (format, counters)
	tagEvent      = 'p' // p<position:8>                → event record (envelope)
	tagStream     = 's' // s<streamKey><version:8>      → position:8
	tagSnapshot   = 'n' // n<streamKey>                 → snapshot envelope
	tagIdem       = 'i' // i<key bytes>                 → idempotency envelope
	tagCheckpoint = 'c' // c<name bytes>                → checkpoint envelope
	// tagDeleted ('d') and tagHoles ('h') are the deletions' (delete.go).
)

var (
	keyFormat   = []byte("mformat")
	keyCounters = []byte("mcounters")
)

// envelope versions (first byte of every value we write).
const (
	recordV2     = 2 // format version 2: version and position at the end
	recordV3     = 3 // recordV2 with the 16-byte event id after the version byte
	snapshotV1   = 1
	idemV1       = 1
	checkpointV1 = 1
	countersV1   = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum is the cause of a DecodeError when a value's checksum does
// not match its bytes.
var errChecksum = errors.New("checksum mismatch")

// errTruncated is the cause when a value ends early or a length prefix
// points past its end.
var errTruncated = errors.New("truncated or malformed value")

// appendStreamKey appends the injective encoding of s: uvarint length of
// Type, Type, uvarint length of ID, ID. The encoding is prefix-free: no
// stream's encoding is a prefix of another's.
func appendStreamKey(b []byte, s runtime.StreamID) []byte {
	b = binary.AppendUvarint(b, uint64(len(s.Type)))
	b = append(b, s.Type...)
	b = binary.AppendUvarint(b, uint64(len(s.ID)))
	return append(b, s.ID...)
}

func eventKey(b []byte, pos uint64) []byte {
	b = append(b, tagEvent)
	return binary.BigEndian.AppendUint64(b, pos)
}

func streamIndexPrefix(b []byte, s runtime.StreamID) []byte {
	b = append(b, tagStream)
	return appendStreamKey(b, s)
}

func streamIndexKey(b []byte, s runtime.StreamID, version uint64) []byte {
	return binary.BigEndian.AppendUint64(streamIndexPrefix(b, s), version)
}

func snapshotKey(s runtime.StreamID) []byte {
	return appendStreamKey([]byte{tagSnapshot}, s)
}

func idemKey(key string) []byte {
	return append([]byte{tagIdem}, key...)
}

func checkpointKey(name string) []byte {
	return append([]byte{tagCheckpoint}, name...)
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix (nil when there is none).
func prefixEnd(prefix []byte) []byte {
	return prefixEndInto(nil, prefix)
}

// prefixEndInto is prefixEnd appending to dst.
func prefixEndInto(dst, prefix []byte) []byte {
	end := append(dst, prefix...)
	for i := len(prefix) - 1; i >= 0; i-- {
		if end[len(dst)+i] != 0xff {
			end[len(dst)+i]++
			return end[:len(dst)+i+1]
		}
	}
	return nil
}

// sealed appends the crc32c of b to b.
func seal(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// unseal checks the trailing checksum and returns the body without it.
func unseal(b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, errTruncated
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errChecksum
	}
	return body, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// encodeRecord appends the record envelope of one event (envelope 3):
//
//	u8 version=3 | [16]byte event id | str type | str id | str name | uvarint schema |
//	varint unix seconds | uvarint nanos | uvarint #metadata |
//	(str key | str value)* | str data |
//	u64 version (BE) | u64 position (BE) | u32 crc32c (LE)
//
// where str is a uvarint length followed by the bytes. Metadata pairs are
// written in sorted key order so that equal records encode identically.
// Envelope 2, written before event ids existed, is the same without the
// id; it is still read, as a record with a zero event id, so stores of
// format 2 need no migration (see docs/storage.md).
//
// The stream version and global position come last, at fixed width, so an
// appender can encode the head (everything before them) and its checksum in
// its own goroutine before the writer has allocated them; the writer then
// copies the head into the batch and appends the 20-byte tail, continuing
// the checksum over 16 bytes (see appendRecordHead and putRecordTail).
func encodeRecord(b []byte, r *runtime.Record, sortedKeys []string) []byte {
	e := runtime.EventData{ID: r.EventID, Name: r.Name, Schema: r.Schema, Time: r.Time, Metadata: r.Metadata, Data: r.Data}
	b, crc := appendRecordHead(b, r.Stream, &e, r.Time, sortedKeys)
	n := len(b)
	b = append(b, make([]byte, recordTailLen)...)
	putRecordTail(b[n:], crc, r.Version, r.Position)
	return b
}

// recordTailLen is the length of a record's fixed-width tail: version,
// position and checksum.
const recordTailLen = 8 + 8 + 4

// appendRecordHead appends the head of e's record envelope (everything
// before the version) to b, with event id e.ID (as given: the caller makes
// one for a zero id), stamped with time t and its metadata written in the
// order of sortedKeys, and returns the CRC-32C of the head.
func appendRecordHead(b []byte, stream runtime.StreamID, e *runtime.EventData, t time.Time, sortedKeys []string) ([]byte, uint32) {
	start := len(b)
	b = append(b, recordV3)
	b = append(b, e.ID[:]...)
	b = appendString(b, stream.Type)
	b = appendString(b, stream.ID)
	b = appendString(b, e.Name)
	b = binary.AppendUvarint(b, uint64(e.Schema))
	b = appendTime(b, t)
	b = binary.AppendUvarint(b, uint64(len(sortedKeys)))
	for _, k := range sortedKeys {
		b = appendString(b, k)
		b = appendString(b, e.Metadata[k])
	}
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	b = append(b, e.Data...)
	return b, crc32.Checksum(b[start:], castagnoli)
}

// putRecordTail writes version, position and the checksum of the whole
// envelope into dst (recordTailLen bytes), given headCRC, the checksum of
// the head that precedes dst.
func putRecordTail(dst []byte, headCRC uint32, version, position uint64) {
	_ = dst[recordTailLen-1]
	binary.BigEndian.PutUint64(dst[0:8], version)
	binary.BigEndian.PutUint64(dst[8:16], position)
	binary.LittleEndian.PutUint32(dst[16:20], crc32.Update(headCRC, castagnoli, dst[:16]))
}

// reader decodes a value without ever allocating more than the bytes it
// holds: every length is checked against what remains first.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed field, aliasing the input.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if r.err != nil || nsec >= 1e9 {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// decodeRecord decodes a record envelope. It never panics and never trusts
// a length before checking it against the remaining bytes.
func decodeRecord(v []byte) (runtime.Record, error) {
	return decodeRecordOf(v, nil, nil)
}

// decodeRecordOf decodes a record envelope that is expected to belong to
// stream known (nil: any stream), copying its bytes into sl (nil: a copy
// of its own); see parseRecordOf.
func decodeRecordOf(v []byte, known *runtime.StreamID, sl *slab) (runtime.Record, error) {
	var rec runtime.Record
	if err := decodeRecordInto(&rec, v, known, sl); err != nil {
		return runtime.Record{}, err
	}
	return rec, nil
}

// decodeRecordInto is decodeRecordOf writing into *rec, every field of
// which it sets: a reader that decodes into a record of its own stack
// copies no Record on the way (see ReadAll).
func decodeRecordInto(rec *runtime.Record, v []byte, known *runtime.StreamID, sl *slab) error {
	body, err := unseal(v)
	if err != nil {
		return err
	}
	return parseRecordInto(rec, body, known, sl)
}

// parseRecord parses a record body (without checksum verification).
func parseRecord(body []byte) (runtime.Record, error) {
	return parseRecordOf(body, nil, nil)
}

// slab hands out the copies of the records one read yields: consecutive
// records share chunks that grow from slabFirst to slabBytes, so that a
// read costs about one allocation per slabBytes of records instead of one
// per record, and a record kept after the read keeps at most its chunk
// alive. Every copy is capacity-limited and chunks are only appended to,
// so no copy overlaps another.
type slab struct {
	free []byte
	// stream and name are the previous record's, for the next to reuse,
	// and head is its encoding of them (the fields before the schema).
	// The encoding is prefix-free, so a record whose fields start with
	// head has the same stream and name: one comparison instead of three
	// fields parsed and compared.
	stream runtime.StreamID
	name   string
	head   []byte
}

const (
	slabFirst = 256
	slabBytes = 4 << 10
)

// clone returns a copy of b.
func (sl *slab) clone(b []byte) []byte {
	if sl == nil || len(b) > slabBytes/4 {
		return bytes.Clone(b)
	}
	if cap(sl.free)-len(sl.free) < len(b) {
		size := min(max(2*cap(sl.free), slabFirst), slabBytes)
		for size < len(b) {
			size *= 2
		}
		sl.free = make([]byte, 0, size)
	}
	n := len(sl.free)
	sl.free = append(sl.free, b...)
	return sl.free[n:len(sl.free):len(sl.free)]
}

// parseRecordOf parses a record body (without checksum verification). The
// record's strings and its Data share one copy of the variable part of
// body, taken from sl: no allocation of its own but a map when it has
// metadata. Data's capacity ends where its bytes do, so writing to or
// appending to Data never changes the strings, which are never modified
// after the copy. When known names the stream the body holds, the record
// takes known's strings and the copy leaves the stream out.
func parseRecordOf(body []byte, known *runtime.StreamID, sl *slab) (runtime.Record, error) {
	var rec runtime.Record
	if err := parseRecordInto(&rec, body, known, sl); err != nil {
		return runtime.Record{}, err
	}
	return rec, nil
}

// parseRecordInto is parseRecordOf writing into *rec, every field of which
// it sets when it succeeds (on an error *rec holds a mix of fields).
func parseRecordInto(rec *runtime.Record, body []byte, known *runtime.StreamID, sl *slab) error {
	head, err := recordHeadLen(body)
	if err != nil {
		return err
	}
	rec.EventID = runtime.EventID{}
	if head > 1 {
		rec.EventID = runtime.EventID(body[1:head])
	}
	tail := body[len(body)-16:]
	rec.Version = binary.BigEndian.Uint64(tail[0:8])
	rec.Position = binary.BigEndian.Uint64(tail[8:16])
	fields := body[head : len(body)-16]
	// The fixed fields are read from body itself, and only what the
	// record must own (strings not already held, metadata, data) is
	// copied: reading the time back from a copy just written stalls on
	// the stores, and the numbers need no copy.
	c := cursor{b: fields}
	haveStream, haveName := false, false
	var typ, id, name []byte
	nameStart := 0
	if sl != nil && len(sl.head) != 0 && len(fields) > len(sl.head) && string(fields[:len(sl.head)]) == string(sl.head) &&
		(known == nil || *known == sl.stream) {
		rec.Stream, rec.Name, haveStream, haveName = sl.stream, sl.name, true, true
		c.off = len(sl.head)
	} else {
		typ, id = c.bytes(), c.bytes()
		nameStart = c.off
		name = c.bytes()
	}
	nameEnd := c.off
	schema, sec, nsec, n := c.numbers()
	metaStart := c.off
	if c.bad || schema > math.MaxUint32 || nsec >= 1e9 || n > uint64(len(c.b)-c.off)/2 {
		// Each metadata pair takes at least two bytes, so n is bounded by
		// what remains.
		return errTruncated
	}
	// Strings already held (the caller's stream, or the stream and name of
	// the read's previous record, which consecutive records of one append
	// share) are reused; the copy starts at the first field that needs one.
	switch {
	case haveName:
	case known != nil && string(typ) == known.Type && string(id) == known.ID:
		rec.Stream, haveStream = *known, true
	case sl != nil && sl.stream.Type != "" && string(typ) == sl.stream.Type && string(id) == sl.stream.ID:
		rec.Stream, haveStream = sl.stream, true
	}
	if !haveName && haveStream && sl != nil && sl.name != "" && string(name) == sl.name {
		rec.Name, haveName = sl.name, true
	}
	from := metaStart
	switch {
	case !haveStream:
		from = 0
	case !haveName:
		from = nameStart
	}
	// The copy has the layout of fields[from:], so offsets carry over.
	c = cursor{b: sl.clone(fields[from:])}
	if !haveStream {
		rec.Stream.Type = c.string()
		rec.Stream.ID = c.string()
	}
	if !haveName {
		rec.Name = c.string()
	}
	c.off = metaStart - from
	rec.Schema = uint32(schema)
	rec.Time = time.Unix(sec, int64(nsec)).UTC()
	rec.Metadata = nil
	if n > 0 {
		rec.Metadata = make(map[string]string, n)
		for range n {
			k := c.string()
			rec.Metadata[k] = c.string()
		}
	}
	rec.Data = c.bytes()
	if c.bad || c.off != len(c.b) {
		return errTruncated
	}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	// Written only when they change: a string written to the heap costs a
	// write barrier while the collector runs, and most records repeat
	// their predecessor's (the comparison of a reused string stops at its
	// pointer).
	if sl != nil && sl.stream != rec.Stream {
		sl.stream = rec.Stream
	}
	if sl != nil && sl.name != rec.Name {
		sl.name = rec.Name
	}
	if sl != nil && !haveName && string(sl.head) != string(fields[:nameEnd]) {
		sl.head = append(sl.head[:0], fields[:nameEnd]...)
	}
	return nil
}

// cursor reads length-prefixed fields from b. Unlike reader it moves an
// offset, never a slice, so that a hot decoding loop writes no pointer
// (a pointer write costs a write barrier while the collector runs). Once
// bad, every read returns a zero value (fail moves off to the end, so no
// fast path reads on).
type cursor struct {
	b   []byte
	off int
	bad bool
}

// fail marks c bad.
func (c *cursor) fail() {
	c.bad = true
	c.off = len(c.b)
}

// uvarint reads an unsigned varint.
//
// Its fast path, a one-byte value (most lengths and small numbers), makes
// no call; longer values take uvarintLong.
func (c *cursor) uvarint() uint64 {
	if off := c.off; uint(off) < uint(len(c.b)) {
		if v := c.b[off]; v < 0x80 {
			c.off = off + 1
			return uint64(v)
		}
	}
	return c.uvarintLong()
}

// uvarintLong is uvarint past its fast path. A value of up to 8 bytes
// with 8 bytes left to read (a record's time: about 5 bytes of seconds
// and 4 of nanoseconds) is decoded from one 64-bit load without a loop:
// the first byte without the continuation bit ends it, and the 7-bit
// groups are packed together in three steps.
func (c *cursor) uvarintLong() uint64 {
	if c.bad || c.off >= len(c.b) {
		c.fail()
		return 0
	}
	if rest := c.b[c.off:]; len(rest) >= 8 {
		if w, n := varint8(binary.LittleEndian.Uint64(rest)); n != 0 {
			c.off += n
			return w
		}
	}
	v, n := binary.Uvarint(c.b[c.off:])
	if n <= 0 {
		c.fail()
		return 0
	}
	c.off += n
	return v
}

// numbers reads the four numbers between a record's name and its
// metadata: schema, the time's seconds and nanoseconds, and the metadata
// count. With 18 bytes left (every record whose data and metadata take a
// few bytes), a one-byte schema and count and times of up to 8 bytes each
// (every time since 1970 takes 5 and 5), it reads them with three 64-bit
// loads and no call; anything else takes the field-by-field path.
func (c *cursor) numbers() (schema uint64, sec int64, nsec, n uint64) {
	if off := c.off; off >= 0 && len(c.b)-off >= 18 && !c.bad {
		b := c.b[off : off+18]
		if s := b[0]; s < 0x80 {
			us, n1 := varint8(binary.LittleEndian.Uint64(b[1:9]))
			if n1 != 0 {
				ns, n2 := varint8(binary.LittleEndian.Uint64(b[1+n1 : 9+n1]))
				if k := b[1+n1+n2]; n2 != 0 && k < 0x80 {
					c.off = off + 2 + n1 + n2
					return uint64(s), unzigzag(us), ns, uint64(k)
				}
			}
		}
	}
	schema = c.uvarint()
	// The time's two numbers are rarely one byte long: straight to the
	// long path.
	sec, nsec = unzigzag(c.uvarintLong()), c.uvarintLong()
	return schema, sec, nsec, c.uvarint()
}

// varint8 decodes the uvarint at the start of w's little-endian bytes and
// returns it and its length, or a length of 0 when it is longer than 8
// bytes (see uvarintLong).
func varint8(w uint64) (uint64, int) {
	stop := ^w & 0x8080808080808080
	if stop == 0 {
		return 0, 0
	}
	n := bits.TrailingZeros64(stop)/8 + 1
	w &= (1<<(8*n) - 1) & 0x7f7f7f7f7f7f7f7f // 1<<64 is 0: all bytes
	w = w&0x007f007f007f007f | (w&0x7f007f007f007f00)>>1
	w = w&0x00003fff00003fff | (w&0x3fff00003fff0000)>>2
	w = w&0x000000000fffffff | (w&0x0fffffff00000000)>>4
	return w, n
}

// varint reads a zig-zag varint (binary.Varint's encoding).
func (c *cursor) varint() int64 { return unzigzag(c.uvarint()) }

// unzigzag undoes the zig-zag encoding of a signed varint.
func unzigzag(ux uint64) int64 {
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// bytes returns the next length-prefixed field, aliasing b with its
// capacity limited to its length.
func (c *cursor) bytes() []byte {
	n := c.uvarint()
	if c.bad || n > uint64(len(c.b)-c.off) {
		c.fail()
		return nil
	}
	start := c.off
	c.off += int(n)
	return c.b[start:c.off:c.off]
}

// string returns the next length-prefixed field as a string sharing b: only
// for a cursor over a copy that nothing writes to afterwards (see
// parseRecordOf).
func (c *cursor) string() string {
	b := c.bytes()
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// recordHeadLen returns the length of a record body's fixed head: the
// envelope version byte, and for envelope 3 the event id after it. The body
// must also hold the 16-byte tail.
func recordHeadLen(body []byte) (int, error) {
	if len(body) < 1 {
		return 0, errTruncated
	}
	var head int
	switch body[0] {
	case recordV2:
		head = 1
	case recordV3:
		head = 1 + len(runtime.EventID{})
	default:
		return 0, fmt.Errorf("unknown record envelope version %d", body[0])
	}
	if len(body) < head+16 {
		return 0, errTruncated
	}
	return head, nil
}

// peekRecordHeader returns the stream and version a damaged record body
// (without its checksum) claims, for error messages only.
func peekRecordHeader(v []byte) (runtime.StreamID, uint64, bool) {
	head, err := recordHeadLen(v)
	if err != nil {
		return runtime.StreamID{}, 0, false
	}
	r := reader{b: v[head : len(v)-16]}
	var s runtime.StreamID
	s.Type = r.string()
	s.ID = r.string()
	return s, binary.BigEndian.Uint64(v[len(v)-16:]), r.err == nil
}

func encodeSnapshot(s runtime.Snapshot) []byte {
	b := make([]byte, 0, 32+len(s.Schema)+len(s.Data))
	b = append(b, snapshotV1)
	b = binary.AppendUvarint(b, s.Version)
	b = appendString(b, s.Schema)
	b = appendTime(b, s.Time)
	b = appendString(b, string(s.Data))
	return seal(b)
}

func decodeSnapshot(stream runtime.StreamID, v []byte) (runtime.Snapshot, error) {
	body, err := unseal(v)
	if err != nil {
		return runtime.Snapshot{}, err
	}
	r := reader{b: body}
	if ver := r.byte(); r.err == nil && ver != snapshotV1 {
		return runtime.Snapshot{}, fmt.Errorf("unknown snapshot envelope version %d", ver)
	}
	s := runtime.Snapshot{Stream: stream}
	s.Version = r.uvarint()
	s.Schema = r.string()
	s.Time = r.time()
	if d := r.bytes(); r.err == nil {
		s.Data = append([]byte{}, d...)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return s, r.err
}

func encodeIdem(rec runtime.IdempotencyRecord) []byte {
	b := make([]byte, 0, 40+len(rec.Stream.Type)+len(rec.Stream.ID))
	b = append(b, idemV1)
	b = appendString(b, rec.Stream.Type)
	b = appendString(b, rec.Stream.ID)
	b = binary.AppendUvarint(b, rec.Version)
	b = binary.AppendUvarint(b, rec.Position)
	b = appendTime(b, rec.Time)
	return seal(b)
}

func decodeIdem(key string, v []byte) (runtime.IdempotencyRecord, error) {
	body, err := unseal(v)
	if err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	r := reader{b: body}
	if ver := r.byte(); r.err == nil && ver != idemV1 {
		return runtime.IdempotencyRecord{}, fmt.Errorf("unknown idempotency envelope version %d", ver)
	}
	rec := runtime.IdempotencyRecord{Key: key}
	rec.Stream.Type = r.string()
	rec.Stream.ID = r.string()
	rec.Version = r.uvarint()
	rec.Position = r.uvarint()
	rec.Time = r.time()
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return rec, r.err
}

func encodeCheckpoint(pos uint64) []byte {
	b := []byte{checkpointV1}
	return seal(binary.AppendUvarint(b, pos))
}

func decodeCheckpoint(v []byte) (uint64, error) {
	body, err := unseal(v)
	if err != nil {
		return 0, err
	}
	r := reader{b: body}
	if ver := r.byte(); r.err == nil && ver != checkpointV1 {
		return 0, fmt.Errorf("unknown checkpoint envelope version %d", ver)
	}
	p := r.uvarint()
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return p, r.err
}

// counters are the store-wide figures kept in one key, rewritten in every
// writer batch so they are always consistent with the data.
type counters struct {
	Events, Streams, Snapshots, Checkpoints, IdempotencyKeys uint64
}

func encodeCounters(c counters) []byte { return encodeCountersInto(nil, c) }

// encodeCountersInto is encodeCounters reusing buf's storage: the writer
// keeps one buffer for the counters key of every group.
func encodeCountersInto(buf []byte, c counters) []byte {
	b := append(buf[:0], countersV1)
	for _, v := range [...]uint64{c.Events, c.Streams, c.Snapshots, c.Checkpoints, c.IdempotencyKeys} {
		b = binary.AppendUvarint(b, v)
	}
	return seal(b)
}

func decodeCounters(v []byte) (counters, error) {
	body, err := unseal(v)
	if err != nil {
		return counters{}, err
	}
	r := reader{b: body}
	if ver := r.byte(); r.err == nil && ver != countersV1 {
		return counters{}, fmt.Errorf("unknown counters envelope version %d", ver)
	}
	var c counters
	c.Events = r.uvarint()
	c.Streams = r.uvarint()
	c.Snapshots = r.uvarint()
	c.Checkpoints = r.uvarint()
	c.IdempotencyKeys = r.uvarint()
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return c, r.err
}
