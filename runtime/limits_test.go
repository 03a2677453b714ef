package runtime

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAppend(t *testing.T) {
	ok := StreamID{Type: "Account", ID: "a-1"}
	ev := func(name string, size int) EventData { return EventData{Name: name, Data: make([]byte, size)} }
	many := make([]EventData, MaxBatchEvents+1)
	for i := range many {
		many[i] = ev("E", 1)
	}
	big := make([]EventData, MaxBatchSize/MaxEventSize+1)
	for i := range big {
		big[i] = ev("E", MaxEventSize)
	}
	tests := []struct {
		name string
		req  AppendRequest
		want error
	}{
		{"valid", AppendRequest{Stream: ok, Events: []EventData{ev("E", 10)}}, nil},
		{"valid any version", AppendRequest{Stream: ok, Expected: AnyVersion, Events: []EventData{ev("E", 0)}}, nil},
		{"valid stream exists", AppendRequest{Stream: ok, Expected: StreamExists, Events: []EventData{ev("E", 0)}}, nil},
		{"valid max version", AppendRequest{Stream: ok, Expected: MaxVersion, Events: []EventData{ev("E", 0)}}, nil},
		{"empty type", AppendRequest{Stream: StreamID{ID: "x"}, Events: []EventData{ev("E", 1)}}, ErrInvalid},
		{"empty id", AppendRequest{Stream: StreamID{Type: "x"}, Events: []EventData{ev("E", 1)}}, ErrInvalid},
		{"long type", AppendRequest{Stream: StreamID{Type: strings.Repeat("t", MaxTypeLength+1), ID: "x"}, Events: []EventData{ev("E", 1)}}, ErrTooLarge},
		{"long id", AppendRequest{Stream: StreamID{Type: "t", ID: strings.Repeat("i", MaxIDLength+1)}, Events: []EventData{ev("E", 1)}}, ErrTooLarge},
		{"reserved expected", AppendRequest{Stream: ok, Expected: MaxVersion + 1, Events: []EventData{ev("E", 1)}}, ErrInvalid},
		{"no events", AppendRequest{Stream: ok}, ErrInvalid},
		{"empty name", AppendRequest{Stream: ok, Events: []EventData{ev("", 1)}}, ErrInvalid},
		{"long name", AppendRequest{Stream: ok, Events: []EventData{ev(strings.Repeat("n", MaxNameLength+1), 1)}}, ErrTooLarge},
		{"event too large", AppendRequest{Stream: ok, Events: []EventData{ev("E", MaxEventSize+1)}}, ErrTooLarge},
		{"metadata counts", AppendRequest{Stream: ok, Events: []EventData{{Name: "E", Data: make([]byte, MaxEventSize), Metadata: map[string]string{"k": "v"}}}}, ErrTooLarge},
		{"too many events", AppendRequest{Stream: ok, Events: many}, ErrTooLarge},
		{"batch too large", AppendRequest{Stream: ok, Events: big}, ErrTooLarge},
		{"empty key is no key", AppendRequest{Stream: ok, Events: []EventData{ev("E", 1)}, IdempotencyKey: ""}, nil},
		{"long key", AppendRequest{Stream: ok, Events: []EventData{ev("E", 1)}, IdempotencyKey: strings.Repeat("k", MaxIDLength+1)}, ErrTooLarge},
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
	s := StreamID{Type: "T", ID: "i"}
	tests := []struct {
		expected, actual uint64
		ok               bool
	}{
		{NoStream, 0, true}, {NoStream, 1, false},
		{3, 3, true}, {3, 2, false}, {3, 4, false},
		{AnyVersion, 0, true}, {AnyVersion, 7, true},
		{StreamExists, 0, false}, {StreamExists, 1, true},
	}
	for _, tt := range tests {
		err := CheckExpected(s, tt.expected, tt.actual)
		if tt.ok != (err == nil) {
			t.Errorf("CheckExpected(%d, %d) = %v, want ok=%v", tt.expected, tt.actual, err, tt.ok)
		}
		if err == nil {
			continue
		}
		var ce *ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
			t.Fatalf("CheckExpected error %v is not a *ConflictError", err)
		}
		if ce.Stream != s || ce.Expected != tt.expected || ce.Actual != tt.actual {
			t.Errorf("ConflictError = %+v", ce)
		}
	}
}

func TestErrorsFormatAndMatch(t *testing.T) {
	cause := errors.New("short buffer")
	de := &DecodeError{Stream: StreamID{Type: "Account", ID: "a\x00b"}, Version: 7, Position: 42, What: "event Deposited", Err: cause}
	if !errors.Is(de, ErrCorrupt) || !errors.Is(de, cause) {
		t.Fatal("DecodeError does not match ErrCorrupt and its cause")
	}
	msg := de.Error()
	for _, want := range []string{`Account/"a\x00b"`, "version 7", "position 42", "Deposited", "short buffer"} {
		if !strings.Contains(msg, want) {
			t.Errorf("DecodeError message %q lacks %q", msg, want)
		}
	}
	dup := &DuplicateError{Existing: IdempotencyRecord{Key: "k1", Stream: StreamID{Type: "A", ID: "1"}, Version: 3}}
	if !errors.Is(dup, ErrDuplicate) || errors.Is(dup, ErrConflict) {
		t.Fatal("DuplicateError matches the wrong sentinel")
	}
	ce := &ConflictError{Stream: StreamID{Type: "A", ID: "1"}, Expected: AnyVersion - 1, Actual: 0}
	if !strings.Contains(ce.Error(), "existing stream") {
		t.Errorf("ConflictError for StreamExists reads %q", ce.Error())
	}
}
