package runtime_test

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestNewEventIDOrderedAndUnique(t *testing.T) {
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	got := make([][]runtime.EventID, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]runtime.EventID, each)
			for i := range ids {
				ids[i] = runtime.NewEventID()
			}
			got[w] = ids
		}()
	}
	wg.Wait()
	seen := make(map[runtime.EventID]bool, workers*each)
	for w, ids := range got {
		for i, id := range ids {
			if i > 0 && bytes.Compare(ids[i-1][:], id[:]) >= 0 {
				t.Fatalf("worker %d: id %d %s not after %s", w, i, id, ids[i-1])
			}
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			if id[6]>>4 != 7 || id[8]>>6 != 2 {
				t.Fatalf("id %s: not a UUIDv7 (version %d, variant bits %b)", id, id[6]>>4, id[8]>>6)
			}
		}
	}
}

func TestNewEventIDCarriesTime(t *testing.T) {
	before := time.Now().UnixMilli()
	id := runtime.NewEventID()
	after := time.Now().UnixMilli()
	ms := int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
	// The generator may run ahead of the clock by the ids made in one
	// millisecond, never behind it.
	if ms < before || ms > after+1 {
		t.Fatalf("id %s: millisecond %d outside [%d, %d]", id, ms, before, after)
	}
}

func TestEventIDText(t *testing.T) {
	id := runtime.NewEventID()
	tests := []struct {
		in      string
		want    runtime.EventID
		wantErr bool
	}{
		{in: "", want: runtime.EventID{}},
		{in: id.String(), want: id},
		{in: "0190B1A2-3C4D-7E5F-8A6B-7C8D9E0F1A2B", want: runtime.EventID{0x01, 0x90, 0xb1, 0xa2, 0x3c, 0x4d, 0x7e, 0x5f, 0x8a, 0x6b, 0x7c, 0x8d, 0x9e, 0x0f, 0x1a, 0x2b}},
		{in: "0190b1a23c4d7e5f8a6b7c8d9e0f1a2b", wantErr: true},
		{in: "0190b1a2-3c4d-7e5f-8a6b-7c8d9e0f1a2g", wantErr: true},
	}
	for _, tt := range tests {
		got, err := runtime.ParseEventID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseEventID(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if s := (runtime.EventID{}).String(); s != "" {
		t.Errorf("zero id String() = %q, want empty", s)
	}
	ids := []runtime.EventID{runtime.NewEventID(), runtime.NewEventID(), runtime.NewEventID()}
	strs := []string{ids[0].String(), ids[1].String(), ids[2].String()}
	if !slices.IsSorted(strs) {
		t.Errorf("string forms %v do not sort like the ids", strs)
	}
}

func BenchmarkNewEventID(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			_ = runtime.NewEventID()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = runtime.NewEventID()
			}
		})
	})
}
