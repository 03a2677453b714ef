package memory

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestIdemIndex: the index of idempotency keys by stream, which hard
// deletes read instead of every key, names exactly the keys of
// s.idempotency after appends, re-recorded expired keys, lazy expiry,
// purges and hard deletes.
func TestIdemIndex(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(WithIdempotencyTTL(time.Hour), WithClock(func() time.Time { return now }))
	a, b, c := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}, runtime.StreamID{Type: "T", ID: "c"}
	appendKeyed := func(st runtime.StreamID, key string) {
		t.Helper()
		_, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, IdempotencyKey: key,
			Events: []runtime.EventData{{Name: "E", Schema: 1, Data: []byte{0x80}}}})
		if err != nil {
			t.Fatalf("append %s with key %q: %v", st, key, err)
		}
	}
	check := func(step string) {
		t.Helper()
		want := map[runtime.StreamID]map[string]struct{}{}
		for k, rec := range s.idempotency {
			if want[rec.Stream] == nil {
				want[rec.Stream] = map[string]struct{}{}
			}
			want[rec.Stream][k] = struct{}{}
		}
		if !maps.EqualFunc(s.idemByStream, want, maps.Equal) {
			t.Errorf("%s: index %v; want %v", step, s.idemByStream, want)
		}
	}
	appendKeyed(a, "k1")
	appendKeyed(a, "k2")
	appendKeyed(b, "k3")
	check("appends")
	now = now.Add(2 * time.Hour) // k1, k2, k3 expire
	appendKeyed(b, "k1")         // k1 re-recorded for b (lazy expiry of a's)
	check("re-recorded key")
	if err := s.SaveIdempotency(ctx, runtime.IdempotencyRecord{Key: "k2", Stream: c, Version: 1, Position: 9, Time: now}); err != nil {
		t.Fatal(err)
	}
	check("SaveIdempotency over an expired key")
	appendKeyed(c, "k4")
	if n, err := s.PurgeExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("PurgeExpiredKeys = %d, %v; want 1 (k3)", n, err)
	}
	check("purge")
	res, err := lifecycle.DeleteStream(ctx, s, c, runtime.HardDelete)
	if err != nil || res.IdempotencyKeys != 2 {
		t.Fatalf("hard delete of %s = %+v, %v; want 2 keys removed (k2, k4)", c, res, err)
	}
	check("hard delete")
	if len(s.idempotency) != 1 || s.idempotency["k1"].Stream != b {
		t.Errorf("keys after the delete: %v; want k1 of %s", s.idempotency, b)
	}
}
