package storekit

import (
	"errors"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestValidateAppend(t *testing.T) {
	ok := runtime.StreamID{Type: "Account", ID: "a-1"}
	ev := func(name string, size int) runtime.EventData {
		return runtime.EventData{Name: name, Data: make([]byte, size)}
	}
	many := make([]runtime.EventData, runtime.MaxBatchEvents+1)
	for i := range many {
		many[i] = ev("E", 1)
	}
	big := make([]runtime.EventData, runtime.MaxBatchSize/runtime.MaxEventSize+1)
	for i := range big {
		big[i] = ev("E", runtime.MaxEventSize)
	}
	tests := []struct {
		name string
		req  runtime.AppendRequest
		want error
	}{
		{"valid", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev("E", 10)}}, nil},
		{"valid any version", runtime.AppendRequest{Stream: ok, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("E", 0)}}, nil},
		{"valid stream exists", runtime.AppendRequest{Stream: ok, Expected: runtime.StreamExists, Events: []runtime.EventData{ev("E", 0)}}, nil},
		{"valid max version", runtime.AppendRequest{Stream: ok, Expected: runtime.MaxVersion, Events: []runtime.EventData{ev("E", 0)}}, nil},
		{"empty type", runtime.AppendRequest{Stream: runtime.StreamID{ID: "x"}, Events: []runtime.EventData{ev("E", 1)}}, runtime.ErrInvalid},
		{"empty id", runtime.AppendRequest{Stream: runtime.StreamID{Type: "x"}, Events: []runtime.EventData{ev("E", 1)}}, runtime.ErrInvalid},
		{"long type", runtime.AppendRequest{Stream: runtime.StreamID{Type: strings.Repeat("t", runtime.MaxTypeLength+1), ID: "x"}, Events: []runtime.EventData{ev("E", 1)}}, runtime.ErrTooLarge},
		{"long id", runtime.AppendRequest{Stream: runtime.StreamID{Type: "t", ID: strings.Repeat("i", runtime.MaxIDLength+1)}, Events: []runtime.EventData{ev("E", 1)}}, runtime.ErrTooLarge},
		{"reserved expected", runtime.AppendRequest{Stream: ok, Expected: runtime.MaxVersion + 1, Events: []runtime.EventData{ev("E", 1)}}, runtime.ErrInvalid},
		{"no events", runtime.AppendRequest{Stream: ok}, runtime.ErrInvalid},
		{"empty name", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev("", 1)}}, runtime.ErrInvalid},
		{"long name", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev(strings.Repeat("n", runtime.MaxNameLength+1), 1)}}, runtime.ErrTooLarge},
		{"event too large", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev("E", runtime.MaxEventSize+1)}}, runtime.ErrTooLarge},
		{"metadata counts", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{{Name: "E", Data: make([]byte, runtime.MaxEventSize), Metadata: map[string]string{"k": "v"}}}}, runtime.ErrTooLarge},
		{"too many events", runtime.AppendRequest{Stream: ok, Events: many}, runtime.ErrTooLarge},
		{"batch too large", runtime.AppendRequest{Stream: ok, Events: big}, runtime.ErrTooLarge},
		{"empty key is no key", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev("E", 1)}, IdempotencyKey: ""}, nil},
		{"long key", runtime.AppendRequest{Stream: ok, Events: []runtime.EventData{ev("E", 1)}, IdempotencyKey: strings.Repeat("k", runtime.MaxIDLength+1)}, runtime.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAppend(tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateAppend: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ValidateAppend: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckExpected(t *testing.T) {
	s := runtime.StreamID{Type: "T", ID: "i"}
	tests := []struct {
		expected, actual uint64
		ok               bool
	}{
		{runtime.NoStream, 0, true}, {runtime.NoStream, 1, false},
		{3, 3, true}, {3, 2, false}, {3, 4, false},
		{runtime.AnyVersion, 0, true}, {runtime.AnyVersion, 7, true},
		{runtime.StreamExists, 0, false}, {runtime.StreamExists, 1, true},
	}
	for _, tt := range tests {
		err := CheckExpected(s, tt.expected, tt.actual)
		if tt.ok != (err == nil) {
			t.Errorf("CheckExpected(%d, %d) = %v, want ok=%v", tt.expected, tt.actual, err, tt.ok)
		}
		if err == nil {
			continue
		}
		var ce *runtime.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, runtime.ErrConflict) {
			t.Fatalf("CheckExpected error %v is not a *ConflictError", err)
		}
		if ce.Stream != s || ce.Expected != tt.expected || ce.Actual != tt.actual {
			t.Errorf("ConflictError = %+v", ce)
		}
	}
}
