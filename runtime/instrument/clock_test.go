package instrument

import (
	"testing"
	"time"
)

// TestMonotonicNow: the default clock never goes back and measures at
// least the time that passed (it reads the monotonic clock alone).
func TestMonotonicNow(t *testing.T) {
	prev := monotonicNow()
	for range 1000 {
		now := monotonicNow()
		if now.Before(prev) {
			t.Fatalf("monotonicNow went back: %v after %v", now, prev)
		}
		prev = now
	}
	start := monotonicNow()
	time.Sleep(2 * time.Millisecond)
	if d := monotonicNow().Sub(start); d < 2*time.Millisecond {
		t.Fatalf("a 2 ms sleep measured %v", d)
	}
}
