package projection

import (
	"context"
	"errors"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// SkipDeletedStreams makes a projection skip the records of streams that
// are deleted when it reads them: during a rebuild or a catch-up after a
// soft delete, the deleted streams' events are not handled (their positions
// still count as processed). Records read before their stream was deleted
// were handled as usual; the stream's tombstone tells the projection to
// drop what it built from them (see OnStreamDeleted). Each stream is looked
// up once per run (lifecycle.StreamTombstone), then remembered. The lookup needs
// per-stream reads, which tenant.All does not offer: there, run one group
// per tenant instead.
func SkipDeletedStreams() Option {
	return func(c *readside.Config) { c.SkipDeleted = true }
}

// OnStreamDeleted hands the projection's tombstone records (see
// lifecycle.DeleteStream) to fn, decoded, instead of to Handle, whatever the
// projection's Events: fn removes what the read model holds of the deleted
// stream. fn's errors are retried as Handle's are. Without this option a
// tombstone reaches Handle only when the projection consumes runtime.TombstoneEvent
// or every record (nil Events).
func OnStreamDeleted(fn func(ctx context.Context, t runtime.Tombstone) error) Option {
	return func(c *readside.Config) { c.OnDeleted = fn }
}

// dispatch calls the projection's handler for rec: OnStreamDeleted's for a
// tombstone when set, else Handle.
func (r *runner) dispatch(ctx context.Context, rec runtime.Record) error {
	if r.cfg.OnDeleted == nil || !runtime.IsTombstone(rec) {
		return r.p.Handle(ctx, rec)
	}
	t, err := runtime.TombstoneOf(rec)
	if err != nil {
		return err
	}
	return r.cfg.OnDeleted(ctx, t)
}

// maxDeletedCache bounds the streams one run remembers (see liveRecord).
const maxDeletedCache = 1 << 16

// liveRecord reports whether rec, which the projection wants, is to be
// handled under SkipDeletedStreams: not when its stream is deleted. cache
// remembers each stream's answer for the run; a tombstone marks its stream.
func (r *runner) liveRecord(ctx context.Context, cache map[runtime.StreamID]bool, rec runtime.Record) (bool, error) {
	if runtime.IsTombstone(rec) {
		cache[rec.Stream] = true
		return true, nil
	}
	if del, ok := cache[rec.Stream]; ok {
		return !del, nil
	}
	_, err := lifecycle.StreamTombstone(ctx, r.store, rec.Stream)
	del := err == nil
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return false, err
	}
	if len(cache) >= maxDeletedCache {
		clear(cache)
	}
	cache[rec.Stream] = del
	return !del, nil
}
