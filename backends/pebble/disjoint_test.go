package pebble

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestRecordsDisjoint checks that the records of one read, whose strings
// and bodies share slab chunks, never alias each other or the store:
// overwriting and appending to every record's Data changes neither its own
// strings, nor its neighbours, nor what a later read returns. Bodies of
// many sizes (empty, small, over the slab's chunk) cross chunk boundaries.
func TestRecordsDisjoint(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	st := runtime.StreamID{Type: "T", ID: "disjoint"}
	var want [][]byte
	for i := range 300 {
		var data []byte
		switch {
		case i%7 == 0:
			data = []byte{}
		case i%41 == 2:
			data = bytes.Repeat([]byte{byte(i)}, 3*slabBytes/2)
		default:
			data = fmt.Appendf(nil, "body-%d-%s", i, bytes.Repeat([]byte{'a'}, i%50))
		}
		want = append(want, data)
		ev := runtime.EventData{Name: fmt.Sprintf("E%d", i), Schema: 1, Data: bytes.Clone(data),
			Metadata: map[string]string{"i": fmt.Sprint(i)}}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: []runtime.EventData{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	reads := map[string]func() ([]runtime.Record, error){
		"ReadStream": func() ([]runtime.Record, error) { return collect(t, s.ReadStream(ctx, st, 0)) },
		"ReadAll":    func() ([]runtime.Record, error) { return collect(t, s.ReadAll(ctx, 0)) },
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			recs, err := read()
			if err != nil || len(recs) != len(want) {
				t.Fatalf("read %d records (%v), want %d", len(recs), err, len(want))
			}
			for i := range recs {
				for j := range recs[i].Data {
					recs[i].Data[j] = 0xee
				}
				recs[i].Data = append(recs[i].Data, "tail"...)
			}
			for i, r := range recs {
				if r.Stream != st || r.Name != fmt.Sprintf("E%d", i) || r.Metadata["i"] != fmt.Sprint(i) {
					t.Fatalf("record %d changed under its neighbours' writes: %v %q %v", i, r.Stream, r.Name, r.Metadata)
				}
				if got := r.Data[len(r.Data)-4:]; string(got) != "tail" || len(r.Data) != len(want[i])+4 {
					t.Fatalf("record %d: Data %q", i, r.Data)
				}
			}
			again, err := read()
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range again {
				if !bytes.Equal(r.Data, want[i]) {
					t.Fatalf("record %d read again: %q, want %q", i, r.Data, want[i])
				}
			}
		})
	}
}

// TestDecodeReusesStrings decodes records through one slab, as a read
// does: a record of the previous record's stream and name takes its
// strings, any other gets its own, and every record decodes to what was
// encoded whatever came before it.
func TestDecodeReusesStrings(t *testing.T) {
	a := runtime.StreamID{Type: "Account", ID: "a"}
	b := runtime.StreamID{Type: "Account", ID: "b"}
	recs := []runtime.Record{
		{Stream: a, Version: 1, Position: 1, Name: "Opened", Schema: 1, Data: []byte("1")},
		{Stream: a, Version: 2, Position: 2, Name: "Deposited", Schema: 1, Data: []byte("2")},
		{Stream: a, Version: 3, Position: 3, Name: "Deposited", Schema: 2, Data: []byte{}, Metadata: map[string]string{"k": "v"}},
		{Stream: b, Version: 1, Position: 4, Name: "Deposited", Schema: 1, Data: []byte("4")},
		{Stream: a, Version: 4, Position: 5, Name: "Deposited", Schema: 1, Data: []byte("5")},
		{Stream: a, Version: 5, Position: 6, Name: "Closed", Schema: 1, Data: []byte("6")},
	}
	for _, known := range []*runtime.StreamID{nil, &a} {
		var sl slab
		for i, want := range recs {
			got, err := decodeRecordOf(encodeForTest(&want), known, &sl)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			want.Time = got.Time
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("known %v, record %d: got %+v, want %+v", known, i, got, want)
			}
		}
	}
}
