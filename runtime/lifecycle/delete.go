package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/sealkey"
	"github.com/cqrsgen/cqrsgen/runtime/internal/tombstone"
)

// DeleteRequest asks a StreamDeleter to delete one stream.
type DeleteRequest struct {
	Stream runtime.StreamID
	Mode   runtime.DeleteMode
	// DryRun computes the DeleteResult without writing anything.
	DryRun bool
}

// DeleteResult says what a delete did (or, for a dry run, would do).
type DeleteResult struct {
	// Tombstone is the stream's tombstone: the one written, the one that
	// was already there (Already), or for a dry run the one that would be
	// written, without a position or time.
	Tombstone runtime.Tombstone
	// Already is true when the stream was already deleted in this mode, or
	// hard-deleted when a soft delete was asked: nothing was written.
	Already bool
	// Events is how many events the stream held (its last event's
	// version), including any a truncation already removed; how many
	// records a hard delete removed itself is Tombstone.Removed.
	Events uint64
	// Snapshot is true when a hard delete removed the stream's snapshot.
	Snapshot bool
	// IdempotencyKeys counts the idempotency keys a hard delete removed.
	IdempotencyKeys uint64
	// Bytes is the size of the removed records as the store counts them
	// (its own encoding), when the store knows it.
	Bytes int64
}

// TombstoneRecord returns the tombstone record of t, as a store appends it
// (t.Time must be set). Stores call it; nothing else needs to.
func TombstoneRecord(t runtime.Tombstone) runtime.Record {
	return runtime.Record{Stream: t.Stream, Version: t.Version, Position: t.Position, Name: runtime.TombstoneEvent, Schema: 1,
		Time: t.Time, Data: tombstone.Data(byte(t.Mode), t.Events, t.Removed)}
}

// StreamDeleter is implemented by stores that can delete streams (see
// DeleteStream, which callers use). DeleteStream validates req, then, in
// one atomic step ordered with every append to the stream:
//
//   - fails with an error matching runtime.ErrNotFound when the stream has no
//     records;
//   - returns Already when the stream's tombstone already says req.Mode, or
//     runtime.HardDelete when req.Mode is runtime.SoftDelete;
//   - otherwise appends the tombstone record (TombstoneRecord) at
//     the stream's next version and the log's next position, and for
//     runtime.HardDelete removes every other record of the stream from the log and
//     the stream index, its snapshot and the idempotency keys recorded for
//     it.
//
// Afterwards Append to the stream fails with a *runtime.DeletedError, before any
// expected-version check (but after the idempotency check: a key recorded
// before a soft delete still returns its first result), ReadStream yields
// the remaining records (a soft delete's events, then the tombstone),
// StreamVersion is the tombstone's version, LoadSnapshot of a hard
// deleted stream fails with runtime.ErrNotFound, and SaveSnapshot and
// SaveIdempotency (of a new key naming the stream) fail with a
// *runtime.DeletedError and store nothing (a command that loaded the
// stream before the delete cannot bring its state back). The tombstone is
// durable when DeleteStream returns.
type StreamDeleter interface {
	DeleteStream(ctx context.Context, req DeleteRequest) (DeleteResult, error)
}

// ValidateDelete checks a delete request before a store acts on it.
func ValidateDelete(req DeleteRequest) error {
	if err := runtime.ValidateStream(req.Stream); err != nil {
		return err
	}
	if req.Mode != runtime.SoftDelete && req.Mode != runtime.HardDelete {
		return fmt.Errorf("%w: delete of %s: unknown delete mode %d", runtime.ErrInvalid, req.Stream, uint8(req.Mode))
	}
	return nil
}

// DeleteStream deletes stream from store with mode (see StreamDeleter for
// what each mode guarantees). It fails with an error matching
// errors.ErrUnsupported when store cannot delete streams, and with one
// matching runtime.ErrNotFound when the stream has no records. Deleting a
// deleted stream again is not an error: the result says Already. A hard
// delete of a stream with a sealed snapshot first destroys the snapshot's
// key (runtime.KeysOf), since ForgetSubject no longer reaches it.
//
//	res, err := lifecycle.DeleteStream(ctx, store, runtime.StreamID{Type: "Account", ID: "a-1"}, runtime.HardDelete)
func DeleteStream(ctx context.Context, store runtime.Store, stream runtime.StreamID, mode runtime.DeleteMode) (DeleteResult, error) {
	return deleteStream(ctx, store, DeleteRequest{Stream: stream, Mode: mode})
}

// PlanDelete reports what DeleteStream would do, writing nothing.
func PlanDelete(ctx context.Context, store runtime.Store, stream runtime.StreamID, mode runtime.DeleteMode) (DeleteResult, error) {
	return deleteStream(ctx, store, DeleteRequest{Stream: stream, Mode: mode, DryRun: true})
}

func deleteStream(ctx context.Context, store runtime.Store, req DeleteRequest) (DeleteResult, error) {
	if err := ValidateDelete(req); err != nil {
		return DeleteResult{}, err
	}
	d, ok := store.(StreamDeleter)
	if !ok {
		return DeleteResult{}, fmt.Errorf("cqrsgen: delete %s: store %T cannot delete streams: %w", req.Stream, store, errors.ErrUnsupported)
	}
	if req.Mode == runtime.HardDelete && !req.DryRun {
		if err := forgetSnapshotKey(ctx, store, req.Stream); err != nil {
			return DeleteResult{}, err
		}
	}
	return d.DeleteStream(ctx, req)
}

// forgetSnapshotKey destroys the key of stream's snapshot when the stream
// has a sealed snapshot (so a key), before a hard delete removes the
// snapshot: the key stores no longer list a hard-deleted stream under its
// subjects (runtime.KeyStore), so ForgetSubject would never reach that key
// afterwards. Done first, a failed delete leaves a snapshot that no longer
// opens, which loads ignore (they rebuild from events), and a retry finds
// it again. Stores that never sealed a snapshot are not asked anything
// (PostgreSQL would create its key tables).
func forgetSnapshotKey(ctx context.Context, store runtime.Store, stream runtime.StreamID) error {
	snap, err := store.LoadSnapshot(ctx, stream)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cqrsgen: hard delete of %s: %w", stream, err)
	}
	if !bytes.HasPrefix(snap.Data, []byte(sealkey.SnapshotMagic)) {
		return nil
	}
	keys, ok := runtime.KeysOf(store)
	if !ok {
		return nil
	}
	if _, _, err := keys.ForgetSubject(ctx, sealkey.SnapshotSubject(stream.Type, stream.ID)); err != nil {
		return fmt.Errorf("cqrsgen: hard delete of %s: destroying its snapshot key: %w", stream, err)
	}
	return nil
}

// StreamTombstone returns the tombstone of a deleted stream, or an error
// matching runtime.ErrNotFound when the stream is not deleted (or has no
// records). It works on any store: a deleted stream's last record is its
// tombstone.
func StreamTombstone(ctx context.Context, store runtime.Store, stream runtime.StreamID) (runtime.Tombstone, error) {
	v, err := store.StreamVersion(ctx, stream)
	if err != nil {
		return runtime.Tombstone{}, err
	}
	if v == 0 {
		return runtime.Tombstone{}, fmt.Errorf("cqrsgen: tombstone of %s: the stream has no records: %w", stream, runtime.ErrNotFound)
	}
	for rec, err := range store.ReadStream(ctx, stream, v-1) {
		if err != nil {
			return runtime.Tombstone{}, err
		}
		if runtime.IsTombstone(rec) {
			return runtime.TombstoneOf(rec)
		}
		break
	}
	return runtime.Tombstone{}, fmt.Errorf("cqrsgen: tombstone of %s: the stream is not deleted: %w", stream, runtime.ErrNotFound)
}
