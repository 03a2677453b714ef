// Package retry holds the waits that the runtime's retry loops share: the
// back-off of a command that lost a race, and the wait of a runner whose
// store is unavailable.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// UnavailableDelay is the wait before retry n+1 (n ≥ 0) after the store
// was unavailable: 100 ms doubling to 2 s, so a runner resumes within about
// 2 s of the store coming back.
func UnavailableDelay(n int) time.Duration {
	return min(100*time.Millisecond<<min(n, 5), 2*time.Second)
}

// Sleep waits d or until ctx is done, reporting whether the full wait
// happened.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Backoff sleeps a jittered, exponentially growing interval (capped at
// about 50ms) before retry attempt+1, or returns ctx's error.
func Backoff(ctx context.Context, attempt int) error {
	limit := time.Millisecond << min(attempt, 6)
	d := time.Duration(rand.Int64N(int64(limit))) + 100*time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("cqrsgen: retrying command: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
