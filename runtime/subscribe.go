package runtime

import (
	"context"
	"errors"
	"iter"

	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
)

// Subscribe yields every record of the store with position > after, in
// position order: first what is already stored (catch-up), then each new
// record as it becomes durable (live), without loss or duplicates. Stores
// expose only durable positions, so a subscriber is never told of an event
// that a crash could erase.
//
// A subscription pulls from the log at its own pace: a slow consumer holds
// no buffer and never blocks writers or other subscribers (back-pressure is
// the consumer's own loop). Errors matching ErrUnavailable (the store's
// server restarting, a lost connection) are not yielded: the subscription
// waits, 100 ms doubling to 2 s between tries, and carries on from the
// last record it yielded once the store answers again. It ends when the
// consumer stops ranging, or on any other error, in particular when ctx is
// done or the store closes: the last pair yielded then carries the error
// (wrapping ctx.Err() or ErrClosed).
func Subscribe(ctx context.Context, store Store, after uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		pos := after
		outages := 0
		// retry reports whether err is an outage to wait out; false means
		// the subscription ends with err.
		retry := func(err error) bool {
			if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return false
			}
			ok := retry.Sleep(ctx, retry.UnavailableDelay(outages))
			outages++
			return ok
		}
		for {
			failed := false
			for rec, err := range store.ReadAll(ctx, pos) {
				if err != nil {
					if retry(err) {
						failed = true
						break
					}
					yield(Record{}, wrapf(err, "subscription after position %d", pos))
					return
				}
				outages = 0
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
			if failed {
				continue
			}
			if _, err := store.Wait(ctx, pos); err != nil {
				if retry(err) {
					continue
				}
				yield(Record{}, wrapf(err, "subscription after position %d", pos))
				return
			}
			outages = 0
		}
	}
}
