package pebble

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// The store's writes. Each goes through the write pipeline (pipeline.go),
// which checks it against the writes before it and commits it in a group
// with one fsync.

// Append appends req atomically (see runtime.Store). It returns once the
// events are synced to disk, unless the store was opened WithNoSync.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	if err := storekit.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, err
	}
	o := getAppendOp(ctx, req, s.opts.now)
	err := s.submit(o)
	res := o.res
	putAppendOp(o)
	if err != nil {
		return runtime.AppendResult{}, err
	}
	return res, nil
}

// SaveSnapshot stores snap unless a snapshot at a higher version exists.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	if err := storekit.ValidateSnapshot(snap); err != nil {
		return err
	}
	return s.submit(&op{kind: opSnapshot, ctx: ctx, snap: snap})
}

// SaveCheckpoint records position under name.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return err
	}
	return s.submit(&op{kind: opCheckpoint, ctx: ctx, name: name, pos: position})
}

// SaveIdempotency records rec if its key is new, or returns a
// *runtime.DuplicateError with the first record.
func (s *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	if err := runtime.ValidateKey("idempotency key", rec.Key); err != nil {
		return err
	}
	if err := runtime.ValidateStream(rec.Stream); err != nil {
		return err
	}
	return s.submit(&op{kind: opIdem, ctx: ctx, idem: rec})
}

// Flush makes every acknowledged append durable. It costs one fsync with
// WithNoSync and is a no-op otherwise (appends are synced before they
// return).
func (s *Store) Flush(ctx context.Context) error {
	if !s.opts.noSync {
		if err := s.enter(ctx, "flush"); err != nil {
			return err
		}
		s.mu.RUnlock()
		return nil
	}
	return s.submit(&op{kind: opFlush, ctx: ctx})
}
