package runtime

import (
	"errors"
	"strings"
	"testing"
)

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
