package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestReadAllBatchesEndAtTheNextRecord checks that ReadAll, which decodes
// records in batches under one lock, still ends a read at the record after
// a Close or a cancellation that comes mid-batch, and that records a
// caller keeps stay intact while the next batches are decoded.
func TestReadAllBatchesEndAtTheNextRecord(t *testing.T) {
	const total = 100
	for _, stopAt := range []int{1, 5, 6, 11, 37} {
		for _, how := range []string{"close", "cancel"} {
			t.Run(fmt.Sprintf("%s after %d", how, stopAt), func(t *testing.T) {
				s := openT(t, t.TempDir())
				defer s.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st := runtime.StreamID{Type: "T", ID: "x"}
				evs := make([]runtime.EventData, total)
				for i := range evs {
					evs[i] = ev(fmt.Sprint(i))
				}
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: evs}); err != nil {
					t.Fatal(err)
				}
				var kept []runtime.Record
				var last error
				for rec, err := range s.ReadAll(ctx, 0) {
					if err != nil {
						last = err
						break
					}
					kept = append(kept, rec)
					if len(kept) == stopAt {
						if how == "close" {
							if err := s.Close(); err != nil {
								t.Fatal(err)
							}
						} else {
							cancel()
						}
					}
				}
				want := runtime.ErrClosed
				if how == "cancel" {
					want = context.Canceled
				}
				if len(kept) != stopAt || !errors.Is(last, want) {
					t.Fatalf("read %d records then %v, want %d then %v", len(kept), last, stopAt, want)
				}
				for i, rec := range kept {
					if rec.Position != uint64(i+1) || rec.Version != uint64(i+1) || string(rec.Data) != fmt.Sprint(i) || rec.Metadata["k"] != fmt.Sprint(i) || rec.Name != "E" || rec.Stream != st {
						t.Fatalf("record %d = %+v", i, rec)
					}
				}
			})
		}
	}
}

// TestCursorVarints checks the cursor's varint decoding (a one-byte fast
// path, a 64-bit load for up to 8 bytes, encoding/binary beyond) against
// encoding/binary, with and without 8 bytes left to read, and that a
// truncated or overlong varint marks the cursor bad.
func TestCursorVarints(t *testing.T) {
	vals := []uint64{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 1<<21 - 1, 1 << 21, 1<<28 + 5, 1<<35 - 1, 1 << 35,
		1<<42 + 99, 1<<49 - 1, 1 << 49, 1<<56 - 1, 1 << 56, 1<<63 + 12345, ^uint64(0)}
	for i := range 1000 {
		vals = append(vals, uint64(i)*0x9e3779b97f4a7c15>>uint(i%64))
	}
	for _, v := range vals {
		for _, pad := range []int{0, 3, 8} {
			b := binary.AppendUvarint(nil, v)
			b = append(b, make([]byte, pad)...)
			c := cursor{b: b}
			if got := c.uvarint(); got != v || c.bad || c.off != len(b)-pad {
				t.Fatalf("uvarint of %d (pad %d) = %d, off %d, bad %v", v, pad, got, c.off, c.bad)
			}
			s := int64(v)
			b = append(binary.AppendVarint(nil, s), make([]byte, pad)...)
			c = cursor{b: b}
			if got := c.varint(); got != s || c.bad {
				t.Fatalf("varint of %d (pad %d) = %d, bad %v", s, pad, got, c.bad)
			}
		}
	}
	for _, b := range [][]byte{{}, {0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		c := cursor{b: b}
		if got := c.uvarint(); !c.bad || got != 0 {
			t.Errorf("uvarint of %x = %d, bad %v; want 0 and bad", b, got, c.bad)
		}
		if got := c.uvarint(); got != 0 {
			t.Errorf("uvarint after bad = %d, want 0", got)
		}
	}
}

// TestSlabReuseMatchesFreshDecode decodes a sequence of records whose
// streams and names repeat, change, and extend one another (a type that is
// a prefix of the next, a name one byte longer) through one slab, as a
// read does, and checks each against a decode of its own.
func TestSlabReuseMatchesFreshDecode(t *testing.T) {
	streams := []runtime.StreamID{{Type: "ab", ID: "c"}, {Type: "abc", ID: ""}, {Type: "ab", ID: "cd"}, {Type: "a", ID: "bc"}}
	names := []string{"x", "xy", "", "x\x00"}
	var sl slab
	for i := range 400 {
		st := streams[(i/3)%len(streams)]
		rec := runtime.Record{EventID: runtime.NewEventID(), Stream: st, Version: uint64(i + 1), Position: uint64(i + 1),
			Name: names[(i/2)%len(names)], Schema: uint32(i), Time: time.Unix(int64(i)*7919, int64(i)).UTC(), Data: []byte(fmt.Sprint(i))}
		if i%5 == 0 {
			rec.Metadata = map[string]string{"k": fmt.Sprint(i)}
		}
		if i%2 == 0 { // a time of today: varints long enough for cursor.numbers's loads
			rec.Time = time.Unix(1_700_000_000+int64(i)*7919, int64(i)*1_000_003%1e9).UTC()
		}
		if i%11 == 0 {
			rec.Data = []byte{}
		}
		enc := encodeRecord(nil, &rec, slices.Sorted(maps.Keys(rec.Metadata)))
		var known *runtime.StreamID
		if i%7 == 0 {
			known = &streams[0]
		}
		got, err := decodeRecordOf(enc, known, &sl)
		want, werr := decodeRecord(enc)
		if err != nil || werr != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, rec) {
			t.Fatalf("record %d: through the slab %+v, %v; alone %+v, %v; written %+v", i, got, err, want, werr, rec)
		}
	}
}
