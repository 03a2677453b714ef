package runtime

import (
	"context"
	"fmt"
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
					yield(Record{}, fmt.Errorf("cqrsgen: subscription after position %d: %w", pos, err))
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
				yield(Record{}, fmt.Errorf("cqrsgen: subscription after position %d: %w", pos, err))
				return
			}
		}
	}
}

// SubscribeEvents is Subscribe with decoding: it yields the records whose
// event names are accepted by decode, decoded. decode returns ok=false to
// skip a record without decoding it (events of other aggregates, or events
// a projection does not consume). A decode error is yielded as a
// *DecodeError and ends the subscription.
func SubscribeEvents[E any](ctx context.Context, store Store, after uint64, decode func(rec Record) (e E, ok bool, err error)) iter.Seq2[Envelope[E], error] {
	return func(yield func(Envelope[E], error) bool) {
		for rec, err := range Subscribe(ctx, store, after) {
			if err != nil {
				yield(Envelope[E]{}, err)
				return
			}
			e, ok, err := decode(rec)
			if err != nil {
				yield(Envelope[E]{}, &DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "event " + rec.Name, Err: err})
				return
			}
			if ok && !yield(EnvelopeOf(rec, e), nil) {
				return
			}
		}
	}
}
