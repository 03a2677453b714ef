package runtime

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by a Store or a Repository that
// belongs to one of these classes satisfies errors.Is with the sentinel,
// whatever context it was wrapped with.
var (
	// ErrConflict reports that an append's expected version did not match
	// the stream's actual version. The error is a *ConflictError.
	ErrConflict = errors.New("cqrsgen: version conflict")
	// ErrNotFound reports a missing snapshot, checkpoint or idempotency
	// record. A missing stream is not an error: it is at version 0.
	ErrNotFound = errors.New("cqrsgen: not found")
	// ErrClosed reports a call on a store that has been closed.
	ErrClosed = errors.New("cqrsgen: store closed")
	// ErrInvalid reports bad input (an empty stream type, id, batch or event
	// name; a reserved expected version). Nothing is written.
	ErrInvalid = errors.New("cqrsgen: invalid argument")
	// ErrTooLarge reports input over a limit (MaxEventSize, …). Nothing is written.
	ErrTooLarge = errors.New("cqrsgen: over limit")
	// ErrCorrupt reports stored bytes that cannot be decoded. The error is a
	// *DecodeError naming the stream and version.
	ErrCorrupt = errors.New("cqrsgen: corrupt record")
	// ErrDuplicate reports an idempotency key that was already recorded.
	// The error is a *DuplicateError carrying the first result.
	ErrDuplicate = errors.New("cqrsgen: duplicate idempotency key")
	// ErrUnavailable reports that the store cannot be reached for now; the
	// call may or may not have taken effect (retry an append with its
	// expected version or idempotency key).
	ErrUnavailable = errors.New("cqrsgen: store unavailable")
	// ErrRetired is what a generated decoder returns for an event retired
	// with //cqrs:retired; a Repository skips such events.
	ErrRetired = errors.New("cqrsgen: retired event")
)

// ConflictError is returned when an append's expected version does not
// match the stream. errors.Is(err, ErrConflict) is true for it.
type ConflictError struct {
	Stream   StreamID // the stream appended to
	Expected uint64   // the version the caller expected (may be NoStream or StreamExists)
	Actual   uint64   // the stream's version at the time of the append
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("cqrsgen: version conflict on stream %s: expected %s, actual %d",
		e.Stream, versionString(e.Expected), e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func versionString(v uint64) string {
	switch v {
	case AnyVersion:
		return "any"
	case StreamExists:
		return "an existing stream"
	case NoStream:
		return "no stream (0)"
	}
	return fmt.Sprint(v)
}

// DecodeError reports a record whose bytes could not be decoded, naming
// where it is stored. errors.Is(err, ErrCorrupt) is true for it, and Unwrap
// returns the underlying cause.
type DecodeError struct {
	Stream   StreamID // the stream the record belongs to
	Version  uint64   // the record's version (0 for snapshots and store-level records)
	Position uint64   // the record's global position, when known
	What     string   // an event wire name, "snapshot", "envelope", "idempotency record"
	Err      error    // the cause
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("cqrsgen: cannot decode %s at stream %s version %d", e.What, e.Stream, e.Version)
	if e.Position != 0 {
		s += fmt.Sprintf(" (position %d)", e.Position)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *DecodeError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// DuplicateError reports an idempotency key already recorded, by Existing.
// errors.Is(err, ErrDuplicate) is true for it.
type DuplicateError struct {
	Existing IdempotencyRecord
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("cqrsgen: idempotency key %q already used on stream %s at version %d",
		e.Existing.Key, e.Existing.Stream, e.Existing.Version)
}

// Is makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// UnknownEventError is the cause inside a DecodeError when a stored event's
// wire name (or schema version) is not one the aggregate knows.
type UnknownEventError struct {
	Name   string
	Schema uint32
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("unknown event %q schema version %d", e.Name, e.Schema)
}

// errPrefix starts the text of every error this module makes.
const errPrefix = "cqrsgen: "

// wrapf returns err with context, reading "cqrsgen: <context>: <err>"
// with the prefix once: a "cqrsgen: " that err's own text starts with is
// dropped, however deep the wrapping. errors.Is and errors.As see err.
func wrapf(err error, format string, args ...any) error {
	return &wrapError{context: fmt.Sprintf(format, args...), err: err}
}

type wrapError struct {
	context string
	err     error
}

func (w *wrapError) Error() string {
	return errPrefix + w.context + ": " + strings.TrimPrefix(w.err.Error(), errPrefix)
}

func (w *wrapError) Unwrap() error { return w.err }
