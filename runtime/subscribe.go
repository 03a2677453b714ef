package runtime

import (
	"context"
	"errors"
	"iter"

	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
)

// Subscribe yields every durable record of the store with position > after,
// in order: first what is stored, then live, without loss or duplicates. A
// slow consumer blocks no one; ErrUnavailable is waited out (100 ms doubling
// to 2 s), then the read resumes after the last record yielded. It ends when
// the consumer stops or on any other error, yielded last (ctx.Err(),
// ErrClosed). See docs/guide.md, "Positions".
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
