package memory_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestRecordsDisjoint checks that the records of one read, whose bodies
// share slabs and arenas, never alias each other or the store: each Data is
// capacity-limited to its length, and overwriting or appending to every
// record of a read changes neither its neighbours nor what a later read
// returns. Bodies of many sizes (nil, empty, small, over the slab and arena
// limits) cross slab and chunk boundaries.
func TestRecordsDisjoint(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	st := runtime.StreamID{Type: "T", ID: "disjoint"}
	other := runtime.StreamID{Type: "T", ID: "other"}
	var want [][]byte
	for i := range 700 {
		var data []byte
		switch {
		case i%7 == 0:
			data = nil
		case i%7 == 1:
			data = []byte{}
		case i%97 == 2:
			data = bytes.Repeat([]byte{byte(i)}, 5000) // over slabBytes and arenaMaxBody
		default:
			data = fmt.Appendf(nil, "body-%d-%s", i, bytes.Repeat([]byte{'a'}, i%50))
		}
		want = append(want, data)
		ev := runtime.EventData{Name: "E", Schema: 1, Data: bytes.Clone(data)}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: []runtime.EventData{ev}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	reads := []struct {
		name string
		read func() []runtime.Record
	}{
		{"ReadStream", func() []runtime.Record { return collect(t, s.ReadStream(ctx, st, 0)) }},
		{"ReadStream after 3", func() []runtime.Record { return collect(t, s.ReadStream(ctx, st, 3)) }},
		{"ReadAll", func() []runtime.Record { return collect(t, s.ReadAll(ctx, 0)) }},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			check := func(recs []runtime.Record) {
				t.Helper()
				for _, rec := range recs {
					w := want[rec.Version-1]
					if !bytes.Equal(rec.Data, w) || (rec.Data == nil) != (w == nil) {
						t.Fatalf("%s version %d position %d: Data %q (nil %t), want %q (nil %t)",
							rec.Stream, rec.Version, rec.Position, rec.Data, rec.Data == nil, w, w == nil)
					}
					if cap(rec.Data) != len(rec.Data) {
						t.Fatalf("%s version %d: cap(Data) %d > len %d: appending would write into a neighbour",
							rec.Stream, rec.Version, cap(rec.Data), len(rec.Data))
					}
				}
			}
			recs := r.read()
			if len(recs) == 0 {
				t.Fatal("read nothing")
			}
			check(recs)
			// Overwrite each record in turn and check all the others still hold
			// their bodies, then append to each.
			for i := range recs {
				for j := range recs[i].Data {
					recs[i].Data[j] = '!'
				}
				if i+1 < len(recs) {
					check(recs[i+1:])
				}
				recs[i].Data = append(recs[i].Data, "appended"...)
			}
			check(r.read())
		})
	}
}

func collect(t *testing.T, seq func(func(runtime.Record, error) bool)) []runtime.Record {
	t.Helper()
	var out []runtime.Record
	for rec, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}
