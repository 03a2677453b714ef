package runtime

import (
	"context"
	"iter"
)

// Subscribe yields every record of the store with position > after, in
// position order: first what is already stored (catch-up), then each new
// record as it becomes durable (live), without loss or duplicates. Stores
// expose only durable positions, so a subscriber is never told of an event
// that a crash could erase.
//
// A subscription pulls from the log at its own pace: a slow consumer holds
// no buffer and never blocks writers or other subscribers (back-pressure is
// the consumer's own loop). It ends when the consumer stops ranging, or
// when ctx is done or the store closes, in which case the last pair yielded
// carries the error (wrapping ctx.Err() or ErrClosed).
func Subscribe(ctx context.Context, store Store, after uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		pos := after
		for {
			for rec, err := range store.ReadAll(ctx, pos) {
				if err != nil {
					yield(Record{}, wrapf(err, "subscription after position %d", pos))
					return
				}
				if rec.Position <= pos {
					// A store must never go backwards; guard against
					// duplicates rather than deliver one twice.
					continue
				}
				if !yield(rec, nil) {
					return
				}
				pos = rec.Position
			}
			if _, err := store.Wait(ctx, pos); err != nil {
				yield(Record{}, wrapf(err, "subscription after position %d", pos))
				return
			}
		}
	}
}
