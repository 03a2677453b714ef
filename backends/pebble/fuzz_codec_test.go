package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	cqrs "github.com/cqrsgen/cqrsgen/runtime"
)

var fuzzCRC = crc32.MakeTable(crc32.Castagnoli)

// withCRC appends the CRC-32C (little-endian) every envelope ends with, so
// that the fuzzer's bytes reach the parser behind the checksum.
func withCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(slices.Clip(b), crc32.Checksum(b, fuzzCRC))
}

func fuzzRecords() []cqrs.Record {
	t := time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC)
	return []cqrs.Record{
		{EventID: cqrs.EventID{0x01, 0x93, 0x3c, 0x8a, 0x01, 0x02, 0x70, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 1},
			Stream: cqrs.StreamID{Type: "bank.account", ID: "acc-1"}, Version: 1, Position: 1, Name: "bank.account.opened", Schema: 1, Time: t, Data: []byte("\x82\xa5Owner\xa3ann")},
		{Stream: cqrs.StreamID{Type: "T", ID: "\x00\xff/\n"}, Version: 1<<62 - 1, Position: 1<<64 - 1, Name: "e", Schema: 1<<32 - 1, Time: time.Unix(-1<<40, 1).UTC(),
			Metadata: map[string]string{"": "", "user": "bob", "trace": "\x00"}, Data: nil},
		{Stream: cqrs.StreamID{Type: "x", ID: "y"}, Version: 7, Position: 300, Name: "n", Time: time.Unix(0, 0).UTC(), Data: bytes.Repeat([]byte{0xc1}, 300)},
	}
}

func encodeForTest(r *cqrs.Record) []byte {
	return encodeRecord(nil, r, slices.Sorted(maps.Keys(r.Metadata)))
}

// encodeV2ForTest encodes r in envelope 2, as stores wrote it before event
// ids existed: envelope 3 without the id.
func encodeV2ForTest(r *cqrs.Record) []byte {
	v := encodeForTest(r)
	body := append([]byte{recordV2}, v[1+len(cqrs.EventID{}):len(v)-4]...)
	return withCRC(body)
}

func sameRecord(a, b cqrs.Record) bool {
	return a.EventID == b.EventID && a.Stream == b.Stream && a.Version == b.Version && a.Position == b.Position && a.Name == b.Name &&
		a.Schema == b.Schema && a.Time.Equal(b.Time) && len(a.Metadata) == len(b.Metadata) &&
		maps.Equal(a.Metadata, b.Metadata) && bytes.Equal(a.Data, b.Data)
}

// FuzzRecordEnvelope feeds arbitrary bytes to the record envelope decoder,
// as stored and with a valid checksum appended. It must never panic, and
// whatever it accepts must survive an encode/decode round trip unchanged.
func FuzzRecordEnvelope(f *testing.F) {
	for _, r := range fuzzRecords() {
		v := encodeForTest(&r)
		f.Add(v)
		f.Add(v[:len(v)-4]) // the body: the fuzz function appends the checksum
		f.Add(encodeV2ForTest(&r))
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range [][]byte{b, withCRC(b)} {
			rec, err := decodeRecord(v)
			if err != nil {
				continue
			}
			again, err := decodeRecord(encodeForTest(&rec))
			if err != nil {
				t.Fatalf("decoded %+v from %x, but its encoding does not decode: %v", rec, v, err)
			}
			if !sameRecord(rec, again) {
				t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
			}
		}
	})
}

// FuzzDecodeEnvelopes feeds arbitrary bytes to the snapshot, idempotency,
// checkpoint and counters envelope decoders (with and without a valid
// checksum); what they accept must round-trip.
func FuzzDecodeEnvelopes(f *testing.F) {
	stream := cqrs.StreamID{Type: "T", ID: "1"}
	t0 := time.Unix(1_700_000_000, 5).UTC()
	for _, v := range [][]byte{
		encodeSnapshot(cqrs.Snapshot{Stream: stream, Version: 100, Schema: "h1", Data: []byte("state"), Time: t0}),
		encodeIdem(cqrs.IdempotencyRecord{Key: "k", Stream: stream, Version: 3, Position: 9, Time: t0}),
		encodeCheckpoint(1 << 40),
		encodeCounters(counters{Events: 10, Streams: 2, Snapshots: 1, Checkpoints: 1, IdempotencyKeys: 4}),
	} {
		f.Add(v)
		f.Add(v[:len(v)-4])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range [][]byte{b, withCRC(b)} {
			if s, err := decodeSnapshot(stream, v); err == nil {
				again, err := decodeSnapshot(stream, encodeSnapshot(s))
				if err != nil || again.Version != s.Version || again.Schema != s.Schema || !again.Time.Equal(s.Time) || !bytes.Equal(again.Data, s.Data) {
					t.Fatalf("snapshot %+v does not round-trip: %+v, %v", s, again, err)
				}
			}
			if r, err := decodeIdem("k", v); err == nil {
				again, err := decodeIdem("k", encodeIdem(r))
				if err != nil || again.Stream != r.Stream || again.Version != r.Version || again.Position != r.Position || !again.Time.Equal(r.Time) {
					t.Fatalf("idempotency record %+v does not round-trip: %+v, %v", r, again, err)
				}
			}
			if p, err := decodeCheckpoint(v); err == nil {
				if again, err := decodeCheckpoint(encodeCheckpoint(p)); err != nil || again != p {
					t.Fatalf("checkpoint %d does not round-trip: %d, %v", p, again, err)
				}
			}
			if c, err := decodeCounters(v); err == nil {
				if again, err := decodeCounters(encodeCounters(c)); err != nil || again != c {
					t.Fatalf("counters %+v do not round-trip: %+v, %v", c, again, err)
				}
			}
		}
	})
}

// FuzzStreamKey feeds arbitrary bytes to the stream key decoder and checks
// that the encoding is injective and prefix-free: two distinct streams
// never encode to the same bytes or to a prefix of each other, and a key
// followed by any suffix decodes back to its stream and that suffix.
func FuzzStreamKey(f *testing.F) {
	f.Add("bank.account", "1", "bank.account", "12", []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("a", "b\x01c", "a\x01b", "c", []byte{})
	f.Add("\x00", "\xff", "\x00\xff", "\xff", []byte{0xff})
	f.Fuzz(func(t *testing.T, type1, id1, type2, id2 string, suffix []byte) {
		// The decoder on raw bytes never panics, and what it reads
		// re-encodes to the bytes it consumed.
		if s, rest, ok := parseStreamKey(suffix); ok {
			consumed := suffix[:len(suffix)-len(rest)]
			if enc := appendStreamKey(nil, s); !bytes.Equal(enc, consumed) {
				// Non-minimal varints decode too; they must at least name
				// the same stream again.
				if s2, r2, ok2 := parseStreamKey(enc); !ok2 || s2 != s || len(r2) != 0 {
					t.Fatalf("parseStreamKey(%x) = %v; its encoding %x decodes to %v, %v", consumed, s, enc, s2, ok2)
				}
			}
		}
		s1 := cqrs.StreamID{Type: type1, ID: id1}
		s2 := cqrs.StreamID{Type: type2, ID: id2}
		k1, k2 := appendStreamKey(nil, s1), appendStreamKey(nil, s2)
		if s1 != s2 && (bytes.HasPrefix(k1, k2) || bytes.HasPrefix(k2, k1)) {
			t.Fatalf("streams %v and %v encode to %x and %x: one is a prefix of the other", s1, s2, k1, k2)
		}
		if s1.Type == "" || s1.ID == "" {
			return // not a valid stream: the decoder refuses it
		}
		got, rest, ok := parseStreamKey(append(k1, suffix...))
		if !ok || got != s1 || !bytes.Equal(rest, suffix) {
			t.Fatalf("parseStreamKey(%x+%x) = %v, %x, %v; want %v", k1, suffix, got, rest, ok, s1)
		}
		// The index key of s1 never falls inside s2's key range.
		if s1 != s2 {
			p2 := streamIndexPrefix(nil, s2)
			ik := streamIndexKey(nil, s1, binary.BigEndian.Uint64(append(suffix, make([]byte, 8)...)))
			if bytes.HasPrefix(ik, p2) {
				t.Fatalf("index key %x of %v lies in the range of %v (prefix %x)", ik, s1, s2, p2)
			}
		}
	})
}

// allocBytes returns the bytes allocated by f, averaged over runs.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// patchLength finds the length-prefixed field want (its uvarint length
// followed by its bytes) in the envelope v, replaces the length with n,
// and re-seals the envelope with a valid checksum.
func patchLength(t *testing.T, v []byte, want string, n uint64) []byte {
	t.Helper()
	field := append(binary.AppendUvarint(nil, uint64(len(want))), want...)
	body := v[:len(v)-4]
	i := bytes.Index(body, field)
	if i < 0 || bytes.Contains(body[i+1:], field) {
		t.Fatalf("field %q not found once in %x", want, body)
	}
	out := append(slices.Clip(body[:i]), binary.AppendUvarint(nil, n)...)
	out = append(out, body[i+len(field)-len(want):]...)
	return withCRC(out)
}

// TestDecodeAllocationBound takes valid envelopes and rewrites one length
// prefix or count to claim 2^32 or 2^63 (with a valid checksum, so the
// parser sees it): the decoders must refuse them after allocating a few
// bytes, not gigabytes. The unpatched envelopes decode, so each case fails
// for the patched field and nothing else.
func TestDecodeAllocationBound(t *testing.T) {
	stream := cqrs.StreamID{Type: "T@T", ID: "I@I"}
	rec := cqrs.Record{Stream: stream, Version: 3, Position: 9, Name: "N@N", Schema: 1, Time: time.Unix(1, 0).UTC(),
		Metadata: map[string]string{"K@": "V@"}, Data: []byte("D#D#")}
	record := encodeForTest(&rec)
	snap := encodeSnapshot(cqrs.Snapshot{Stream: stream, Version: 5, Schema: "S@S", Data: []byte("D#D#"), Time: time.Unix(1, 0).UTC()})
	idem := encodeIdem(cqrs.IdempotencyRecord{Key: "k", Stream: stream, Version: 3, Position: 9, Time: time.Unix(1, 0).UTC()})
	decRecord := func(v []byte) error { _, err := decodeRecord(v); return err }
	decSnap := func(v []byte) error { _, err := decodeSnapshot(stream, v); return err }
	decIdem := func(v []byte) error { _, err := decodeIdem("k", v); return err }
	decKey := func(v []byte) error { // v carries a checksum for patchLength: drop it
		if _, _, ok := parseStreamKey(v[:len(v)-4]); !ok {
			return errTruncated
		}
		return nil
	}
	key := withCRC(appendStreamKey(nil, stream))
	tests := []struct {
		name   string
		valid  []byte
		field  string
		decode func([]byte) error
	}{
		{"record stream type", record, "T@T", decRecord},
		{"record stream id", record, "I@I", decRecord},
		{"record event name", record, "N@N", decRecord},
		{"record metadata key", record, "K@", decRecord},
		{"record metadata value", record, "V@", decRecord},
		{"record data", record, "D#D#", decRecord},
		{"snapshot schema", snap, "S@S", decSnap},
		{"snapshot data", snap, "D#D#", decSnap},
		{"idempotency stream type", idem, "T@T", decIdem},
		{"idempotency stream id", idem, "I@I", decIdem},
		{"stream key type", key, "T@T", decKey},
		{"stream key id", key, "I@I", decKey},
	}
	for _, tc := range tests {
		for _, n := range []uint64{1 << 32, 1<<63 + 1} {
			t.Run(fmt.Sprintf("%s %#x", tc.name, n), func(t *testing.T) {
				if err := tc.decode(tc.valid); err != nil {
					t.Fatalf("the unpatched input does not decode: %v", err)
				}
				bad := patchLength(t, tc.valid, tc.field, n)
				if err := tc.decode(bad); err == nil {
					t.Fatal("decoded an envelope whose length prefix exceeds its bytes")
				}
				if got := allocBytes(100, func() { _ = tc.decode(bad) }); got > 4<<10 {
					t.Fatalf("a refused decode allocated %d bytes per call, want at most 4 KiB", got)
				}
			})
		}
	}
	// A metadata count of 2^32 (the pairs take at least two bytes each).
	t.Run("record metadata count", func(t *testing.T) {
		body := record[:len(record)-4]
		pair := append([]byte{1, 2}, "K@\x02V@"...)
		i := bytes.Index(body, pair)
		if i < 0 {
			t.Fatalf("metadata not found in %x", body)
		}
		bad := append(slices.Clip(body[:i]), binary.AppendUvarint(nil, 1<<32)...)
		bad = withCRC(append(bad, body[i+1:]...))
		if decRecord(bad) == nil {
			t.Fatal("decoded a record claiming 2^32 metadata pairs")
		}
		if got := allocBytes(100, func() { _ = decRecord(bad) }); got > 4<<10 {
			t.Fatalf("a refused decode allocated %d bytes per call, want at most 4 KiB", got)
		}
	})
}
