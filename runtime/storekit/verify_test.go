package storekit_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

func TestVerifyProblemString(t *testing.T) {
	a1 := runtime.StreamID{Type: "account", ID: "a1"}
	tests := []struct {
		name string
		p    storekit.VerifyProblem
		want string
	}{
		{"kind and detail only", storekit.VerifyProblem{Kind: "head", Detail: "log_head says 3"}, "head: log_head says 3"},
		{"everything", storekit.VerifyProblem{Kind: storekit.ProblemRecord, Key: []byte{0x70, 0, 2}, Table: "events", Stream: a1, Version: 2, Position: 7, Detail: "bad"},
			`record stream account/"a1" version 2 position 7 key 700002 table events: bad`},
		{"pebble shape", storekit.VerifyProblem{Kind: storekit.ProblemIndexMissing, Key: []byte{0x73, 0x01}, Stream: a1, Version: 1, Position: 4, Detail: "no entry"},
			`index-missing stream account/"a1" version 1 position 4 key 7301: no entry`},
		{"postgres shape", storekit.VerifyProblem{Kind: storekit.ProblemPositionGap, Table: "events", Position: 5, Detail: "position 4 is missing"},
			"position-gap position 5 table events: position 4 is missing"},
		{"empty key is printed", storekit.VerifyProblem{Kind: "unknown-key", Key: []byte{}, Detail: "empty key"}, "unknown-key key : empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestVerifyReportAdd(t *testing.T) {
	tests := []struct {
		name    string
		add     int
		listed  int
		omitted int
		wantOK  bool
	}{
		{"none", 0, 0, 0, true},
		{"one", 1, 1, 0, false},
		{"at the cap", storekit.MaxVerifyProblems, storekit.MaxVerifyProblems, 0, false},
		{"past the cap", storekit.MaxVerifyProblems + 7, storekit.MaxVerifyProblems, 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r storekit.VerifyReport
			for i := range tt.add {
				r.Add(storekit.VerifyProblem{Kind: storekit.ProblemPositionGap, Position: uint64(i + 1), Detail: fmt.Sprint(i)})
			}
			if len(r.Problems) != tt.listed || r.Omitted != tt.omitted || r.OK() != tt.wantOK {
				t.Errorf("listed %d, omitted %d, OK %v; want %d, %d, %v", len(r.Problems), r.Omitted, r.OK(), tt.listed, tt.omitted, tt.wantOK)
			}
			for i, p := range r.Problems {
				if p.Position != uint64(i+1) {
					t.Fatalf("problem %d is at position %d: Add must keep the order", i, p.Position)
				}
			}
		})
	}
	// Omitted alone makes a report not OK.
	if (storekit.VerifyReport{Omitted: 1}).OK() {
		t.Error("OK() with omitted problems")
	}
}

// TestVerifyReportAddCopiesKey: backends pass keys that their iterators
// reuse.
func TestVerifyReportAddCopiesKey(t *testing.T) {
	var r storekit.VerifyReport
	key := []byte("p\x00\x01")
	r.Add(storekit.VerifyProblem{Kind: storekit.ProblemRecord, Key: key})
	r.Add(storekit.VerifyProblem{Kind: storekit.ProblemRecord})
	key[0] = 'X'
	if !bytes.Equal(r.Problems[0].Key, []byte("p\x00\x01")) {
		t.Errorf("the listed key changed with the caller's buffer: %q", r.Problems[0].Key)
	}
	if r.Problems[1].Key != nil {
		t.Errorf("a problem without a key got %q", r.Problems[1].Key)
	}
}
