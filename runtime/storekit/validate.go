package storekit

import (
	"context"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// ValidateExpected checks that expected is an exact version or one of
// runtime.NoStream, runtime.StreamExists, runtime.AnyVersion.
func ValidateExpected(expected uint64) error {
	if expected > runtime.MaxVersion && expected != runtime.StreamExists && expected != runtime.AnyVersion {
		return fmt.Errorf("%w: expected version %d is in the reserved range (max %d)", runtime.ErrInvalid, expected, runtime.MaxVersion)
	}
	return nil
}

// CheckExpected compares an expected version with a stream's actual
// version and returns a *runtime.ConflictError on mismatch.
func CheckExpected(stream runtime.StreamID, expected, actual uint64) error {
	ok := false
	switch expected {
	case runtime.AnyVersion:
		ok = true
	case runtime.StreamExists:
		ok = actual > 0
	default:
		ok = expected == actual
	}
	if !ok {
		return &runtime.ConflictError{Stream: stream, Expected: expected, Actual: actual}
	}
	return nil
}

// EventSize is the size an event counts against runtime.MaxEventSize and
// runtime.MaxBatchSize.
func EventSize(e runtime.EventData) int {
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
func ValidateAppend(req runtime.AppendRequest) error {
	if err := runtime.ValidateStream(req.Stream); err != nil {
		return err
	}
	if err := ValidateExpected(req.Expected); err != nil {
		return err
	}
	if len(req.Events) == 0 {
		return fmt.Errorf("%w: append to %s with no events", runtime.ErrInvalid, req.Stream)
	}
	if len(req.Events) > runtime.MaxBatchEvents {
		return fmt.Errorf("%w: append to %s has %d events, limit %d", runtime.ErrTooLarge, req.Stream, len(req.Events), runtime.MaxBatchEvents)
	}
	if req.IdempotencyKey != "" {
		if err := runtime.ValidateKey("idempotency key", req.IdempotencyKey); err != nil {
			return err
		}
	}
	total := 0
	for i, e := range req.Events {
		if e.Name == "" {
			return fmt.Errorf("%w: event %d of append to %s has an empty name", runtime.ErrInvalid, i, req.Stream)
		}
		if e.Name == runtime.TombstoneEvent {
			return fmt.Errorf("%w: event %d of append to %s: name %q is reserved for tombstones (see lifecycle.DeleteStream)", runtime.ErrInvalid, i, req.Stream, e.Name)
		}
		if len(e.Name) > runtime.MaxNameLength {
			return fmt.Errorf("%w: event %d of append to %s: name is %d bytes, limit %d", runtime.ErrTooLarge, i, req.Stream, len(e.Name), runtime.MaxNameLength)
		}
		n := EventSize(e)
		if n > runtime.MaxEventSize {
			return fmt.Errorf("%w: event %d (%s) of append to %s is %d bytes, limit %d", runtime.ErrTooLarge, i, e.Name, req.Stream, n, runtime.MaxEventSize)
		}
		total += n
	}
	if total > runtime.MaxBatchSize {
		return fmt.Errorf("%w: append to %s is %d bytes, limit %d", runtime.ErrTooLarge, req.Stream, total, runtime.MaxBatchSize)
	}
	return nil
}

// ValidateSnapshot checks a snapshot before it is saved.
func ValidateSnapshot(s runtime.Snapshot) error {
	if err := runtime.ValidateStream(s.Stream); err != nil {
		return err
	}
	if s.Version == 0 || s.Version > runtime.MaxVersion {
		return fmt.Errorf("%w: snapshot of %s at version %d", runtime.ErrInvalid, s.Stream, s.Version)
	}
	if len(s.Data) > runtime.MaxSnapshotSize {
		return fmt.Errorf("%w: snapshot of %s is %d bytes, limit %d", runtime.ErrTooLarge, s.Stream, len(s.Data), runtime.MaxSnapshotSize)
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
