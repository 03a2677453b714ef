package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime/internal/tombstone"
)

// Deleting a stream (runtime/lifecycle: DeleteStream, and the
// StreamDeleter capability of stores) appends a tombstone record to the
// stream, at the version after its last record and at a new global
// position, so that readers of the log (ReadAll, Subscribe, projections,
// tools) are told what happened. Afterwards the repository's Load and
// Execute, and every append to the stream whatever its expected version,
// fail with ErrStreamDeleted: a deleted id is never reused, so a retried
// command cannot bring a deleted aggregate back. What stays in this
// package is what the Repository and stores need to recognise a deleted
// stream; the operations live in runtime/lifecycle.

// TombstoneEvent is the wire name of tombstone records (lifecycle.DeleteStream);
// appends of events with this name fail with ErrInvalid.
const TombstoneEvent = "cqrsgen:deleted"

// ErrStreamDeleted reports a read of, or an append to, a deleted stream.
// The error is a *DeletedError.
var ErrStreamDeleted = errors.New("cqrsgen: stream deleted")

// DeleteMode selects what lifecycle.DeleteStream removes.
type DeleteMode uint8

const (
	// SoftDelete hides the stream and keeps its events (see
	// lifecycle.StreamDeleter).
	SoftDelete DeleteMode = 1
	// HardDelete removes the stream's events, snapshot, index and
	// idempotency keys (see lifecycle.StreamDeleter).
	HardDelete DeleteMode = 2
)

func (m DeleteMode) String() string {
	switch m {
	case SoftDelete:
		return "soft"
	case HardDelete:
		return "hard"
	}
	return fmt.Sprintf("DeleteMode(%d)", uint8(m))
}

// DeletedError reports a deleted stream. errors.Is(err, ErrStreamDeleted)
// is true for it.
type DeletedError struct {
	// Tombstone is the stream's tombstone.
	Tombstone Tombstone
}

func (e *DeletedError) Error() string {
	return fmt.Sprintf("cqrsgen: stream %s was %s-deleted at position %d (%s)", e.Tombstone.Stream, e.Tombstone.Mode,
		e.Tombstone.Position, e.Tombstone.Time.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrStreamDeleted) true.
func (e *DeletedError) Is(target error) bool { return target == ErrStreamDeleted }

// Tombstone describes a deleted stream: the decoded tombstone record.
type Tombstone struct {
	Stream StreamID
	Mode   DeleteMode
	// Version and Position are the tombstone record's (Version: the last event's + 1).
	Version, Position uint64
	Time              time.Time // when the stream was deleted
	Events            uint64    // how many events it had (its last event version)
	// Removed counts the records a hard delete removed (a soft one's tombstone included).
	Removed uint64
}

// IsTombstone reports whether rec is a tombstone record.
func IsTombstone(rec Record) bool { return rec.Name == TombstoneEvent }

// tombstoneV1 is the first byte of a tombstone record's data (see
// lifecycle.TombstoneRecord, which writes it).
const tombstoneV1 = tombstone.V1

// TombstoneOf decodes a tombstone record. A record that is not one fails
// with ErrInvalid; a damaged one with a *DecodeError.
func TombstoneOf(rec Record) (Tombstone, error) {
	if !IsTombstone(rec) {
		return Tombstone{}, fmt.Errorf("%w: record %s version %d is a %q, not a tombstone", ErrInvalid, rec.Stream, rec.Version, rec.Name)
	}
	t := Tombstone{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, Time: rec.Time}
	bad := func(why string) (Tombstone, error) {
		return Tombstone{}, &DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "tombstone", Err: errors.New(why)}
	}
	d := rec.Data
	if len(d) < 2 || d[0] != tombstoneV1 {
		return bad("unknown tombstone format")
	}
	t.Mode = DeleteMode(d[1])
	if t.Mode != SoftDelete && t.Mode != HardDelete {
		return bad(fmt.Sprintf("unknown delete mode %d", d[1]))
	}
	d = d[2:]
	var n int
	if t.Events, n = binary.Uvarint(d); n <= 0 {
		return bad("truncated event count")
	}
	d = d[n:]
	if t.Removed, n = binary.Uvarint(d); n <= 0 || n != len(d) {
		return bad("truncated or overlong removed count")
	}
	return t, nil
}

// deleted returns the error a repository reports for the tombstone rec.
func deleted(rec Record) error {
	t, err := TombstoneOf(rec)
	if err != nil {
		return err
	}
	return &DeletedError{Tombstone: t}
}
