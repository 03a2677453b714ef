package storekit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

func TestCheck(t *testing.T) {
	s := runtime.StreamID{Type: "T", ID: "i"}
	two := []runtime.EventData{{Name: "E"}, {Name: "E"}}
	first := runtime.IdempotencyRecord{Key: "k", Stream: s, Version: 3, Position: 9}
	tests := []struct {
		name          string
		req           runtime.AppendRequest
		actual, head  uint64
		found         bool
		want          runtime.AppendResult
		wantErr       error
		wantConflict  bool
		wantDuplicate bool
	}{
		{name: "new stream", req: runtime.AppendRequest{Stream: s, Expected: runtime.NoStream, Events: two}, head: 7,
			want: runtime.AppendResult{FirstVersion: 1, LastVersion: 2, FirstPosition: 8, LastPosition: 9}},
		{name: "exact version", req: runtime.AppendRequest{Stream: s, Expected: 4, Events: two}, actual: 4, head: 10,
			want: runtime.AppendResult{FirstVersion: 5, LastVersion: 6, FirstPosition: 11, LastPosition: 12}},
		{name: "any version", req: runtime.AppendRequest{Stream: s, Expected: runtime.AnyVersion, Events: two[:1]}, actual: 2,
			want: runtime.AppendResult{FirstVersion: 3, LastVersion: 3, FirstPosition: 1, LastPosition: 1}},
		{name: "conflict", req: runtime.AppendRequest{Stream: s, Expected: 3, Events: two}, actual: 4,
			wantErr: runtime.ErrConflict, wantConflict: true},
		{name: "stream exists on a missing stream", req: runtime.AppendRequest{Stream: s, Expected: runtime.StreamExists, Events: two},
			wantErr: runtime.ErrConflict, wantConflict: true},
		{name: "duplicate key wins over a stale version", req: runtime.AppendRequest{Stream: s, Expected: 0, Events: two, IdempotencyKey: "k"},
			actual: 3, found: true, wantErr: runtime.ErrDuplicate, wantDuplicate: true},
		{name: "past the maximum version", req: runtime.AppendRequest{Stream: s, Expected: runtime.AnyVersion, Events: two},
			actual: runtime.MaxVersion - 1, wantErr: runtime.ErrTooLarge},
		{name: "up to the maximum version", req: runtime.AppendRequest{Stream: s, Expected: runtime.AnyVersion, Events: two},
			actual: runtime.MaxVersion - 2, want: runtime.AppendResult{FirstVersion: runtime.MaxVersion - 1, LastVersion: runtime.MaxVersion,
				FirstPosition: 1, LastPosition: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := storekit.Check(tt.req, tt.actual, tt.head, first, tt.found)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
			if res != tt.want {
				t.Errorf("Check = %+v, want %+v", res, tt.want)
			}
			var ce *runtime.ConflictError
			if errors.As(err, &ce) != tt.wantConflict {
				t.Errorf("error %v: *ConflictError %v, want %v", err, !tt.wantConflict, tt.wantConflict)
			} else if tt.wantConflict && (ce.Stream != s || ce.Expected != tt.req.Expected || ce.Actual != tt.actual) {
				t.Errorf("ConflictError = %+v", ce)
			}
			var de *runtime.DuplicateError
			if errors.As(err, &de) != tt.wantDuplicate {
				t.Errorf("error %v: *DuplicateError %v, want %v", err, !tt.wantDuplicate, tt.wantDuplicate)
			} else if tt.wantDuplicate && de.Existing != first {
				t.Errorf("DuplicateError carries %+v, want the first record %+v", de.Existing, first)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	clock := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	own := time.Date(2029, 5, 6, 7, 8, 9, 10, time.FixedZone("Y", -7200))
	ownID := runtime.NewEventID()
	tests := []struct {
		name      string
		req       runtime.AppendRequest
		reads     int    // clock readings by NewStamp
		wantOwnID []bool // event i keeps its id
		wantOwnT  []bool // event i keeps its time
	}{
		{"ids and times filled in", runtime.AppendRequest{Events: make([]runtime.EventData, 3)}, 1,
			[]bool{false, false, false}, []bool{false, false, false}},
		{"own ids and times kept", runtime.AppendRequest{Events: []runtime.EventData{{ID: ownID, Time: own}}}, 0,
			[]bool{true}, []bool{true}},
		{"a key needs the clock", runtime.AppendRequest{IdempotencyKey: "k", Events: []runtime.EventData{{ID: ownID, Time: own}}}, 1,
			[]bool{true}, []bool{true}},
		{"mixed", runtime.AppendRequest{Events: []runtime.EventData{{ID: ownID}, {Time: own}, {}}}, 1,
			[]bool{true, false, false}, []bool{false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			now := func() time.Time { reads++; return clock }
			before := runtime.NewEventID()
			st := storekit.NewStamp(tt.req, now)
			if reads != tt.reads {
				t.Errorf("NewStamp read the clock %d times, want %d", reads, tt.reads)
			}
			var last runtime.EventID
			for i, e := range tt.req.Events {
				id, at := st.Event(i)
				switch {
				case tt.wantOwnID[i] && id != e.ID:
					t.Errorf("event %d: id %v, want its own %v", i, id, e.ID)
				case !tt.wantOwnID[i] && (id.IsZero() || string(id[:]) <= string(before[:]) || string(id[:]) <= string(last[:])):
					t.Errorf("event %d: id %v is not new and increasing (before %v, last %v)", i, id, before, last)
				}
				if !tt.wantOwnID[i] {
					last = id
				}
				want := clock.UTC()
				if tt.wantOwnT[i] {
					want = own.UTC()
				}
				if !at.Equal(want) || at.Location() != time.UTC || at != at.Round(0) {
					t.Errorf("event %d: time %v, want %v in UTC without a monotonic reading", i, at, want)
				}
			}
			if got := st.Now(); !got.Equal(clock) || got.Location() != time.UTC {
				t.Errorf("Now = %v, want %v in UTC", got, clock)
			}
			if reads != 1 {
				t.Errorf("the append read the clock %d times, want once", reads)
			}
		})
	}
}

func TestKeyRecord(t *testing.T) {
	s := runtime.StreamID{Type: "T", ID: "i"}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	req := runtime.AppendRequest{Stream: s, IdempotencyKey: "k", Events: make([]runtime.EventData, 2)}
	res := runtime.AppendResult{FirstVersion: 4, LastVersion: 5, FirstPosition: 10, LastPosition: 11}
	want := runtime.IdempotencyRecord{Key: "k", Stream: s, Version: 5, Position: 11, Time: at}
	if got := storekit.KeyRecord(req, res, at); got != want {
		t.Errorf("KeyRecord = %+v, want %+v", got, want)
	}
}
