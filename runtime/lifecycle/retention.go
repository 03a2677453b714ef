package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Retention: idempotency keys that expire, and truncation of the oldest
// part of the global log once it has been archived.
//
// Idempotency keys. Every store takes a time to live for its keys (an
// option of its constructor; 0, the default, keeps keys forever). A key
// expires TTL after its record's Time, on the store's clock: from then on
// it no longer deduplicates (an Append or SaveIdempotency with it records
// it afresh) and LoadIdempotency reports runtime.ErrNotFound. Expired
// records are removed lazily (when their key is used again) and by
// Retention.PurgeExpiredKeys. Changing the TTL applies to records already
// stored, since expiry is computed from their Time when they are read.
//
// Truncation. Retention.TruncateLog removes every event at or below a
// position. Positions are never renumbered and never reused; what remains
// is the log from Truncated()+1 to the head:
//   - ReadAll, Subscribe and projections yield only what remains: a reader
//     starting at 0 starts at the first kept position. A ReadAll that a
//     truncation overtakes while it runs either goes on over the events
//     it had (a store that reads a snapshot) or ends with an error
//     wrapping runtime.ErrTruncated; it never skips positions silently.
//   - StreamVersion and appends are unaffected: a stream keeps its version.
//   - ReadStream of a stream whose events up to version V were removed,
//     asked for events after a version below V, fails before yielding
//     anything with a *runtime.TruncatedError naming the stream and V. A
//     read that a truncation overtakes while it runs ends with that error;
//     it never skips versions or reports corruption. A Repository whose
//     stream has a snapshot at V or later loads as before; without one,
//     Load fails with that error.
//
// PlanTruncation tells which streams would be left without such a
// snapshot, and which checkpoints (projections, sagas) have not yet
// processed the range: a consumer resuming from such a checkpoint would
// skip the removed events without knowing it.

// IdempotencyExpired reports whether rec has outlived ttl at now. A ttl of
// 0 or less never expires; otherwise a record expires once now is at or
// after rec.Time + ttl. Stores call it with their own clock.
func IdempotencyExpired(rec runtime.IdempotencyRecord, ttl time.Duration, now time.Time) bool {
	return ttl > 0 && !now.Before(rec.Time.Add(ttl))
}

// TruncateResult describes a completed TruncateLog.
type TruncateResult struct {
	// Through is the log's last removed position after the call.
	Through uint64
	// Removed counts the events this call removed.
	Removed uint64
}

// Retention is implemented by stores that can expire idempotency keys and
// truncate the log. Tools such as cqrsctl call it through a type
// assertion. The memory, Pebble and PostgreSQL stores implement it.
type Retention interface {
	// PurgeExpiredKeys removes the idempotency records that have expired
	// under the store's TTL and returns how many it removed (0, doing
	// nothing, when keys never expire).
	PurgeExpiredKeys(ctx context.Context) (uint64, error)

	// Truncated returns the log's last removed position: 0 when nothing
	// was ever truncated. The log starts at Truncated()+1.
	Truncated(ctx context.Context) (uint64, error)

	// TruncateLog removes every event at a position ≤ through, atomically:
	// after a crash the log is truncated through the earlier position or
	// through this one, never in between. through must be below the
	// durable head (the newest event is always kept, so that the head
	// survives a restart on every store), else runtime.ErrInvalid. A
	// through at or below Truncated() removes nothing. It checks nothing
	// about snapshots or archives: see PlanTruncation.
	TruncateLog(ctx context.Context, through uint64) (TruncateResult, error)
}

// MaxPlanUncovered bounds the streams a TruncationPlan lists in Uncovered.
const MaxPlanUncovered = 100

// TruncationPlan describes what TruncateLog(through) would remove.
type TruncationPlan struct {
	// From and Through are the first and last positions it would remove
	// (From > Through when it would remove nothing).
	From, Through uint64
	// Events counts the events in From..Through.
	Events uint64
	// Streams counts the streams that have events in From..Through.
	Streams uint64
	// Uncovered lists (up to MaxPlanUncovered, in order of first
	// appearance) the streams that have no snapshot at or after their
	// last version in the range: after the truncation they cannot be
	// loaded or read from the start (a *runtime.TruncatedError). Deleted
	// streams are not listed: they are not loaded. UncoveredCount counts
	// them all.
	Uncovered      []runtime.StreamID
	UncoveredCount uint64
	// Behind lists (up to MaxPlanUncovered, by name) the checkpoints below
	// Through: their projections or sagas have not processed the whole
	// range, and would skip what it removes. BehindCount counts them all.
	// Both stay empty when the store does not implement CheckpointLister.
	Behind      []CheckpointInfo
	BehindCount uint64
}

// CheckpointInfo is one checkpoint as a CheckpointLister lists it.
type CheckpointInfo struct {
	Name     string
	Position uint64
}

// CheckpointLister is implemented by stores that can list their
// checkpoints (the memory, Pebble and PostgreSQL stores). Checkpoints
// yields every checkpoint, tenants' included (under their stored names),
// in the backend's order of names.
type CheckpointLister interface {
	Checkpoints(ctx context.Context) iter.Seq2[CheckpointInfo, error]
}

// PlanTruncation reads the events TruncateLog(ctx, through) would remove
// from s and checks that every stream they belong to has a snapshot at or
// after its last removed version or is deleted, and that every checkpoint is at or past
// through. The store does not know the aggregates' state schemas: a
// snapshot that the application will ignore as stale (Snapshot.Schema)
// counts as covering here. It keeps one map entry per stream of the range.
func PlanTruncation(ctx context.Context, s runtime.Store, through uint64) (TruncationPlan, error) {
	r, ok := s.(Retention)
	if !ok {
		return TruncationPlan{}, fmt.Errorf("%w: the store cannot truncate its log (it does not implement lifecycle.Retention)", runtime.ErrInvalid)
	}
	start, err := r.Truncated(ctx)
	if err != nil {
		return TruncationPlan{}, err
	}
	p := TruncationPlan{From: start + 1, Through: through}
	if through <= start {
		return p, nil
	}
	last := make(map[runtime.StreamID]uint64)
	var order []runtime.StreamID
	for rec, err := range s.ReadAll(ctx, start) {
		if err != nil {
			return p, err
		}
		if rec.Position > through {
			break
		}
		p.Events++
		if _, seen := last[rec.Stream]; !seen {
			order = append(order, rec.Stream)
		}
		last[rec.Stream] = max(last[rec.Stream], rec.Version)
		if rec.Position == through {
			break
		}
	}
	p.Streams = uint64(len(order))
	for _, st := range order {
		snap, err := s.LoadSnapshot(ctx, st)
		if err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return p, err
		}
		if err == nil && snap.Version >= last[st] {
			continue
		}
		// A deleted stream is never loaded again: it needs no snapshot.
		// (Its tombstone is at or after its records in the range, so a
		// truncation has not removed it.)
		if _, err := StreamTombstone(ctx, s, st); err == nil {
			continue
		} else if !errors.Is(err, runtime.ErrNotFound) {
			return p, err
		}
		p.UncoveredCount++
		if len(p.Uncovered) < MaxPlanUncovered {
			p.Uncovered = append(p.Uncovered, st)
		}
	}
	p.Uncovered = slices.Clip(p.Uncovered)
	if cl, ok := s.(CheckpointLister); ok {
		for c, err := range cl.Checkpoints(ctx) {
			if err != nil {
				return p, err
			}
			if c.Position >= through {
				continue
			}
			p.BehindCount++
			if len(p.Behind) < MaxPlanUncovered {
				p.Behind = append(p.Behind, c)
			}
		}
	}
	return p, nil
}
