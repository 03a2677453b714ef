package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Deleting a stream. An event store is append-only, but law and auditors
// ask for two kinds of delete, and both are offered by stores that
// implement StreamDeleter (the memory, Pebble and PostgreSQL stores, and the
// tenant views over them):
//
//   - SoftDelete hides a stream: the repository's Load and Execute fail
//     with ErrStreamDeleted, and its events stay in the log for audit and
//     for projection rebuilds (which may skip them: SkipDeletedStreams).
//   - HardDelete removes the stream's events, snapshot, stream index and
//     idempotency keys from the store.
//
// Either way the store appends a tombstone record to the stream, at the
// version after its last record and at a new global position, so that
// readers of the log (ReadAll, Subscribe, projections, tools) are told what
// happened, and every later append to the stream, whatever its expected
// version, fails with ErrStreamDeleted: a deleted id is never reused, so a
// retried command cannot bring a deleted aggregate back. A hard delete
// leaves holes in the global log where the removed events were; positions
// stay strictly increasing, and a store's Verify accounts for the holes.

// TombstoneEvent is the wire name of tombstone records (see DeleteStream).
// Appends of events with this name fail with ErrInvalid.
const TombstoneEvent = "cqrsgen:deleted"

// ErrStreamDeleted reports a read of, or an append to, a deleted stream.
// The error is a *DeletedError.
var ErrStreamDeleted = errors.New("cqrsgen: stream deleted")

// DeleteMode selects what DeleteStream removes.
type DeleteMode uint8

const (
	// SoftDelete hides the stream and keeps its events (see DeleteStream).
	SoftDelete DeleteMode = 1
	// HardDelete removes the stream's events, snapshot, index and
	// idempotency keys (see DeleteStream).
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
	// Version and Position are the tombstone record's: Version is one past
	// the stream's last record before the delete.
	Version, Position uint64
	// Time is when the stream was deleted.
	Time time.Time
	// Events is how many events the stream had (its last event version).
	Events uint64
	// Removed is how many records a hard delete removed from the log (the
	// events, and a soft delete's tombstone when one came first); 0 for a
	// soft delete.
	Removed uint64
}

// IsTombstone reports whether rec is a tombstone record.
func IsTombstone(rec Record) bool { return rec.Name == TombstoneEvent }

// tombstoneV1 is the first byte of a tombstone record's data.
const tombstoneV1 = 1

// TombstoneRecord returns the tombstone record of t, as a store appends it
// (t.Time must be set). Stores call it; nothing else needs to.
func TombstoneRecord(t Tombstone) Record {
	data := []byte{tombstoneV1, byte(t.Mode)}
	data = binary.AppendUvarint(data, t.Events)
	data = binary.AppendUvarint(data, t.Removed)
	return Record{Stream: t.Stream, Version: t.Version, Position: t.Position, Name: TombstoneEvent, Schema: 1,
		Time: t.Time, Data: data}
}

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

// DeleteRequest asks a StreamDeleter to delete one stream.
type DeleteRequest struct {
	Stream StreamID
	Mode   DeleteMode
	// DryRun computes the DeleteResult without writing anything.
	DryRun bool
}

// DeleteResult says what a delete did (or, for a dry run, would do).
type DeleteResult struct {
	// Tombstone is the stream's tombstone: the one written, the one that
	// was already there (Already), or for a dry run the one that would be
	// written, without a position or time.
	Tombstone Tombstone
	// Already is true when the stream was already deleted in this mode, or
	// hard-deleted when a soft delete was asked: nothing was written.
	Already bool
	// Events is how many event records the delete hid (soft) or removed
	// (hard).
	Events uint64
	// Snapshot is true when a hard delete removed the stream's snapshot.
	Snapshot bool
	// IdempotencyKeys counts the idempotency keys a hard delete removed.
	IdempotencyKeys uint64
	// Bytes is the size of the removed records as the store counts them
	// (its own encoding), when the store knows it.
	Bytes int64
}

// StreamDeleter is implemented by stores that can delete streams (see
// DeleteStream, which callers use). DeleteStream validates req, then, in
// one atomic step ordered with every append to the stream:
//
//   - fails with an error matching ErrNotFound when the stream has no
//     records;
//   - returns Already when the stream's tombstone already says req.Mode, or
//     HardDelete when req.Mode is SoftDelete;
//   - otherwise appends the tombstone record (runtime.TombstoneRecord) at
//     the stream's next version and the log's next position, and for
//     HardDelete removes every other record of the stream from the log and
//     the stream index, its snapshot and the idempotency keys recorded for
//     it.
//
// Afterwards Append to the stream fails with a *DeletedError, before any
// expected-version check (but after the idempotency check: a key recorded
// before a soft delete still returns its first result), ReadStream yields
// the remaining records (a soft delete's events, then the tombstone),
// StreamVersion is the tombstone's version, LoadSnapshot of a hard
// deleted stream fails with ErrNotFound, and SaveSnapshot and
// SaveIdempotency (of a new key naming the stream) fail with a
// *DeletedError and store nothing (a command that loaded the stream
// before the delete cannot bring its state back). The tombstone is durable
// when DeleteStream returns.
type StreamDeleter interface {
	DeleteStream(ctx context.Context, req DeleteRequest) (DeleteResult, error)
}

// ValidateDelete checks a delete request before a store acts on it.
func ValidateDelete(req DeleteRequest) error {
	if err := ValidateStream(req.Stream); err != nil {
		return err
	}
	if req.Mode != SoftDelete && req.Mode != HardDelete {
		return fmt.Errorf("%w: delete of %s: unknown delete mode %d", ErrInvalid, req.Stream, uint8(req.Mode))
	}
	return nil
}

// DeleteStream deletes stream from store with mode (see StreamDeleter for
// what each mode guarantees). It fails with an error matching
// errors.ErrUnsupported when store cannot delete streams, and with one
// matching ErrNotFound when the stream has no records. Deleting a deleted
// stream again is not an error: the result says Already.
//
//	res, err := runtime.DeleteStream(ctx, store, runtime.StreamID{Type: "Account", ID: "a-1"}, runtime.HardDelete)
func DeleteStream(ctx context.Context, store Store, stream StreamID, mode DeleteMode) (DeleteResult, error) {
	return deleteStream(ctx, store, DeleteRequest{Stream: stream, Mode: mode})
}

// PlanDelete reports what DeleteStream would do, writing nothing.
func PlanDelete(ctx context.Context, store Store, stream StreamID, mode DeleteMode) (DeleteResult, error) {
	return deleteStream(ctx, store, DeleteRequest{Stream: stream, Mode: mode, DryRun: true})
}

func deleteStream(ctx context.Context, store Store, req DeleteRequest) (DeleteResult, error) {
	if err := ValidateDelete(req); err != nil {
		return DeleteResult{}, err
	}
	d, ok := store.(StreamDeleter)
	if !ok {
		return DeleteResult{}, fmt.Errorf("cqrsgen: delete %s: store %T cannot delete streams: %w", req.Stream, store, errors.ErrUnsupported)
	}
	return d.DeleteStream(ctx, req)
}

// StreamTombstone returns the tombstone of a deleted stream, or an error
// matching ErrNotFound when the stream is not deleted (or has no records).
// It works on any store: a deleted stream's last record is its tombstone.
func StreamTombstone(ctx context.Context, store Store, stream StreamID) (Tombstone, error) {
	v, err := store.StreamVersion(ctx, stream)
	if err != nil {
		return Tombstone{}, err
	}
	if v == 0 {
		return Tombstone{}, fmt.Errorf("cqrsgen: tombstone of %s: the stream has no records: %w", stream, ErrNotFound)
	}
	for rec, err := range store.ReadStream(ctx, stream, v-1) {
		if err != nil {
			return Tombstone{}, err
		}
		if IsTombstone(rec) {
			return TombstoneOf(rec)
		}
		break
	}
	return Tombstone{}, fmt.Errorf("cqrsgen: tombstone of %s: the stream is not deleted: %w", stream, ErrNotFound)
}
