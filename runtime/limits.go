package runtime

import (
	"context"
	"fmt"
	"time"
)

// Limits every store enforces, so that data written through one backend can
// be moved to any other. They are checked before anything is written.
const (
	// MaxTypeLength is the longest stream type, in bytes.
	MaxTypeLength = 255
	// MaxIDLength is the longest stream id, idempotency key or checkpoint
	// name, in bytes.
	MaxIDLength = 1024
	// MaxNameLength is the longest event wire name, in bytes.
	MaxNameLength = 255
	// MaxEventSize is the largest event: its Data plus the keys and values
	// of its Metadata, in bytes.
	MaxEventSize = 4 << 20
	// MaxBatchEvents is the most events one append may carry.
	MaxBatchEvents = 10_000
	// MaxBatchSize is the largest total of event sizes in one append.
	MaxBatchSize = 16 << 20
	// MaxSnapshotSize is the largest snapshot Data.
	MaxSnapshotSize = 64 << 20
)

// ValidateStream checks a stream id against the rules every store applies.
func ValidateStream(s StreamID) error {
	switch {
	case s.Type == "":
		return fmt.Errorf("%w: empty stream type (stream id %q)", ErrInvalid, s.ID)
	case s.ID == "":
		return fmt.Errorf("%w: empty stream id (stream type %q)", ErrInvalid, s.Type)
	case len(s.Type) > MaxTypeLength:
		return fmt.Errorf("%w: stream type is %d bytes, limit %d", ErrTooLarge, len(s.Type), MaxTypeLength)
	case len(s.ID) > MaxIDLength:
		return fmt.Errorf("%w: stream id is %d bytes, limit %d", ErrTooLarge, len(s.ID), MaxIDLength)
	}
	return nil
}

// ValidateKey checks an idempotency key or a checkpoint name.
func ValidateKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(key) > MaxIDLength:
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, len(key), MaxIDLength)
	}
	return nil
}

// ValidateExpected checks that expected is an exact version or one of
// NoStream, StreamExists, AnyVersion.
func ValidateExpected(expected uint64) error {
	if expected > MaxVersion && expected != StreamExists && expected != AnyVersion {
		return fmt.Errorf("%w: expected version %d is in the reserved range (max %d)", ErrInvalid, expected, MaxVersion)
	}
	return nil
}

// CheckExpected compares an expected version with a stream's actual
// version and returns a *ConflictError on mismatch.
func CheckExpected(stream StreamID, expected, actual uint64) error {
	ok := false
	switch expected {
	case AnyVersion:
		ok = true
	case StreamExists:
		ok = actual > 0
	default:
		ok = expected == actual
	}
	if !ok {
		return &ConflictError{Stream: stream, Expected: expected, Actual: actual}
	}
	return nil
}

// EventSize is the size an event counts against MaxEventSize and
// MaxBatchSize.
func EventSize(e EventData) int {
	n := len(e.Data)
	for k, v := range e.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// ValidateAppend checks a whole append request before a store touches
// anything: stream, expected version, batch size, every event's name and
// size, and the idempotency key. Stores call it first; a request it accepts
// can only fail later on a conflict, a duplicate key, the context or I/O.
func ValidateAppend(req AppendRequest) error {
	if err := ValidateStream(req.Stream); err != nil {
		return err
	}
	if err := ValidateExpected(req.Expected); err != nil {
		return err
	}
	if len(req.Events) == 0 {
		return fmt.Errorf("%w: append to %s with no events", ErrInvalid, req.Stream)
	}
	if len(req.Events) > MaxBatchEvents {
		return fmt.Errorf("%w: append to %s has %d events, limit %d", ErrTooLarge, req.Stream, len(req.Events), MaxBatchEvents)
	}
	if req.IdempotencyKey != "" {
		if err := ValidateKey("idempotency key", req.IdempotencyKey); err != nil {
			return err
		}
	}
	total := 0
	for i, e := range req.Events {
		if e.Name == "" {
			return fmt.Errorf("%w: event %d of append to %s has an empty name", ErrInvalid, i, req.Stream)
		}
		if e.Name == TombstoneEvent {
			return fmt.Errorf("%w: event %d of append to %s: name %q is reserved for tombstones (see DeleteStream)", ErrInvalid, i, req.Stream, e.Name)
		}
		if len(e.Name) > MaxNameLength {
			return fmt.Errorf("%w: event %d of append to %s: name is %d bytes, limit %d", ErrTooLarge, i, req.Stream, len(e.Name), MaxNameLength)
		}
		n := EventSize(e)
		if n > MaxEventSize {
			return fmt.Errorf("%w: event %d (%s) of append to %s is %d bytes, limit %d", ErrTooLarge, i, e.Name, req.Stream, n, MaxEventSize)
		}
		total += n
	}
	if total > MaxBatchSize {
		return fmt.Errorf("%w: append to %s is %d bytes, limit %d", ErrTooLarge, req.Stream, total, MaxBatchSize)
	}
	return nil
}

// ValidateSnapshot checks a snapshot before it is saved.
func ValidateSnapshot(s Snapshot) error {
	if err := ValidateStream(s.Stream); err != nil {
		return err
	}
	if s.Version == 0 || s.Version > MaxVersion {
		return fmt.Errorf("%w: snapshot of %s at version %d", ErrInvalid, s.Stream, s.Version)
	}
	if len(s.Data) > MaxSnapshotSize {
		return fmt.Errorf("%w: snapshot of %s is %d bytes, limit %d", ErrTooLarge, s.Stream, len(s.Data), MaxSnapshotSize)
	}
	return nil
}

// ContextErr returns ctx's error wrapped with what was being attempted, or
// nil while ctx is live. Stores call it on entry.
func ContextErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cqrsgen: %s: %w", op, err)
	}
	return nil
}

// NormalizeTime returns t in UTC without a monotonic reading, or now when t
// is zero. Stores store what it returns so that every backend round-trips
// times identically.
func NormalizeTime(t time.Time, now func() time.Time) time.Time {
	if t.IsZero() {
		t = now()
	}
	return t.UTC().Round(0)
}
