package storetest

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// RetentionFactory makes stores for RunRetention.
type RetentionFactory struct {
	// Open returns a new, empty store whose idempotency keys expire ttl
	// after they are recorded (0: never) and whose clock is now. The store
	// must implement lifecycle.Retention.
	Open func(t *testing.T, ttl time.Duration, now func() time.Time) runtime.Store
	// Reopen, when non-nil, closes s and opens the same underlying store
	// again with ttl and now.
	Reopen func(t *testing.T, s runtime.Store, ttl time.Duration, now func() time.Time) runtime.Store
}

// Clock is a settable clock for tests of expiry: Now returns the time
// last set, so that tests advance time instead of sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// RunRetention checks the store's lifecycle.Retention: idempotency keys that
// expire under a TTL (on the store's clock, in tenant views too) and
// truncation of the log (what readers see, errors, persistence). It runs
// no wall-clock waits: time moves by a Clock.
func RunRetention(t *testing.T, f RetentionFactory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("storetest: RetentionFactory.Open is nil")
	}
	r := &retentionHarness{f: f}
	t.Run("KeyTTL", r.testKeyTTL)
	t.Run("Truncate", r.testTruncate)
	t.Run("Interplay", r.testInterplay)
}

type retentionHarness struct {
	f RetentionFactory
}

const keyTTL = time.Hour

// open returns a fresh store (closed when t ends), its Retention and its
// clock.
func (r *retentionHarness) open(t *testing.T, ttl time.Duration) (runtime.Store, lifecycle.Retention, *Clock) {
	t.Helper()
	c := NewClock(time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC))
	s := r.f.Open(t, ttl, c.Now)
	if s == nil {
		t.Fatal("storetest: RetentionFactory.Open returned nil")
	}
	cs := &closer{s: s}
	t.Cleanup(func() { cs.close(t) })
	ret, ok := s.(lifecycle.Retention)
	if !ok {
		t.Fatalf("storetest: %T does not implement lifecycle.Retention", s)
	}
	return s, ret, c
}

func (r *retentionHarness) reopen(t *testing.T, s runtime.Store, ttl time.Duration, c *Clock) (runtime.Store, lifecycle.Retention) {
	t.Helper()
	s = r.f.Reopen(t, s, ttl, c.Now)
	cs := &closer{s: s}
	t.Cleanup(func() { cs.close(t) })
	return s, s.(lifecycle.Retention)
}

// keyedAppend appends one event to st with key, expecting any version.
func keyedAppend(t *testing.T, s runtime.Store, st runtime.StreamID, key string) (runtime.AppendResult, error) {
	t.Helper()
	return s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: key})
}

func wantDup(t *testing.T, what string, err error) {
	t.Helper()
	var de *runtime.DuplicateError
	if !errors.As(err, &de) {
		t.Fatalf("%s: %v, want a *runtime.DuplicateError", what, err)
	}
}

func (r *retentionHarness) testKeyTTL(t *testing.T) {
	t.Run("ZeroKeepsForever", func(t *testing.T) {
		s, ret, c := r.open(t, 0)
		st := stream("T", "a")
		if _, err := keyedAppend(t, s, st, "k"); err != nil {
			t.Fatal(err)
		}
		c.Advance(100 * 365 * 24 * time.Hour)
		_, err := keyedAppend(t, s, st, "k")
		wantDup(t, "a key 100 years later with no TTL", err)
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 0 {
			t.Errorf("PurgeExpiredKeys with no TTL = %d, %v; want 0, nil", n, err)
		}
		if _, err := s.LoadIdempotency(ctx(t), "k"); err != nil {
			t.Errorf("LoadIdempotency: %v", err)
		}
	})
	t.Run("Append", func(t *testing.T) {
		s, _, c := r.open(t, keyTTL)
		st := stream("T", "a")
		first, err := keyedAppend(t, s, st, "k")
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(keyTTL - time.Nanosecond)
		_, err = keyedAppend(t, s, st, "k")
		wantDup(t, "the key just before it expires", err)
		if rec, err := s.LoadIdempotency(ctx(t), "k"); err != nil || rec.Position != first.LastPosition {
			t.Fatalf("LoadIdempotency before expiry = %+v, %v", rec, err)
		}
		c.Advance(time.Nanosecond)
		if _, err := s.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("LoadIdempotency of an expired key: %v, want ErrNotFound", err)
		}
		again, err := keyedAppend(t, s, st, "k")
		if err != nil {
			t.Fatalf("Append with an expired key: %v, want it recorded afresh", err)
		}
		if again.LastVersion != 2 {
			t.Errorf("Append with an expired key: %+v, want version 2", again)
		}
		rec, err := s.LoadIdempotency(ctx(t), "k")
		if err != nil || rec.Position != again.LastPosition || !rec.Time.Equal(c.Now()) {
			t.Fatalf("LoadIdempotency after recording again = %+v, %v; want position %d, time %v", rec, err, again.LastPosition, c.Now())
		}
		_, err = keyedAppend(t, s, st, "k")
		wantDup(t, "the key recorded again", err)
		if n := stats(t, s).IdempotencyKeys; n != 1 {
			t.Errorf("Stats.IdempotencyKeys = %d after a key was replaced, want 1", n)
		}
	})
	t.Run("ExpiredThenConflict", func(t *testing.T) {
		// A retry with a stale expected version is a duplicate while the
		// key lives and a plain conflict once it has expired.
		s, _, c := r.open(t, keyTTL)
		st := stream("T", "a")
		if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: Events(1), IdempotencyKey: "k"}); err != nil {
			t.Fatal(err)
		}
		c.Advance(keyTTL)
		_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: Events(1), IdempotencyKey: "k"})
		var ce *runtime.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("stale retry with an expired key: %v, want a *runtime.ConflictError", err)
		}
	})
	t.Run("ExpiredRace", func(t *testing.T) {
		// Retries racing on one expired key: exactly one records it, the
		// others are told of that one.
		s, _, c := r.open(t, keyTTL)
		st := stream("T", "a")
		if _, err := keyedAppend(t, s, st, "k"); err != nil {
			t.Fatal(err)
		}
		c.Advance(keyTTL)
		const n = 8
		results := make([]runtime.AppendResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "k"})
			}()
		}
		wg.Wait()
		var won []runtime.AppendResult
		for i, err := range errs {
			if err == nil {
				won = append(won, results[i])
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d of %d racing appends with an expired key succeeded, want 1 (errors %v)", len(won), n, errs)
		}
		for _, err := range errs {
			var de *runtime.DuplicateError
			if err != nil && (!errors.As(err, &de) || de.Existing.Position != won[0].LastPosition) {
				t.Errorf("a losing append: %v, want a duplicate of position %d", err, won[0].LastPosition)
			}
		}
		if v := version(t, s, st); v != 2 {
			t.Errorf("stream version %d after the race, want 2", v)
		}
	})
	t.Run("SaveIdempotency", func(t *testing.T) {
		s, _, c := r.open(t, keyTTL)
		st := stream("T", "a")
		mustAppend(t, s, st, runtime.NoStream, Events(2)...)
		rec := runtime.IdempotencyRecord{Key: "k", Stream: st, Version: 1, Position: 1}
		if err := s.SaveIdempotency(ctx(t), rec); err != nil {
			t.Fatal(err)
		}
		c.Advance(keyTTL / 2)
		wantDup(t, "SaveIdempotency of a live key", s.SaveIdempotency(ctx(t), rec))
		c.Advance(keyTTL / 2)
		rec.Version, rec.Position = 2, 2
		if err := s.SaveIdempotency(ctx(t), rec); err != nil {
			t.Fatalf("SaveIdempotency of an expired key: %v", err)
		}
		got, err := s.LoadIdempotency(ctx(t), "k")
		if err != nil || got.Version != 2 {
			t.Fatalf("LoadIdempotency = %+v, %v; want the new record", got, err)
		}
		// A record saved with an old Time of its own is expired at once.
		old := runtime.IdempotencyRecord{Key: "old", Stream: st, Version: 1, Position: 1, Time: c.Now().Add(-keyTTL)}
		if err := s.SaveIdempotency(ctx(t), old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadIdempotency(ctx(t), "old"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadIdempotency of a record saved already expired: %v, want ErrNotFound", err)
		}
	})
	t.Run("Purge", func(t *testing.T) {
		s, ret, c := r.open(t, keyTTL)
		st := stream("T", "a")
		for i, k := range []string{"k1", "k2", "k3"} {
			if i == 2 {
				c.Advance(keyTTL / 2)
			}
			if _, err := keyedAppend(t, s, st, k); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 0 {
			t.Fatalf("PurgeExpiredKeys before any expiry = %d, %v", n, err)
		}
		c.Advance(keyTTL / 2)
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 2 {
			t.Fatalf("PurgeExpiredKeys = %d, %v; want 2 (k1, k2)", n, err)
		}
		if n := stats(t, s).IdempotencyKeys; n != 1 {
			t.Errorf("Stats.IdempotencyKeys after the purge = %d, want 1", n)
		}
		if _, err := s.LoadIdempotency(ctx(t), "k3"); err != nil {
			t.Errorf("LoadIdempotency of the live key: %v", err)
		}
		_, err := keyedAppend(t, s, st, "k3")
		wantDup(t, "the live key after a purge", err)
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 0 {
			t.Errorf("second PurgeExpiredKeys = %d, %v; want 0", n, err)
		}
		c.Advance(keyTTL)
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 1 {
			t.Errorf("PurgeExpiredKeys of the last key = %d, %v; want 1", n, err)
		}
		if n := stats(t, s).IdempotencyKeys; n != 0 {
			t.Errorf("Stats.IdempotencyKeys = %d, want 0", n)
		}
		if _, err := keyedAppend(t, s, st, "k1"); err != nil {
			t.Errorf("Append with a purged key: %v", err)
		}
		if n := stats(t, s).IdempotencyKeys; n != 1 {
			t.Errorf("Stats.IdempotencyKeys = %d after recording a purged key again, want 1", n)
		}
		if v, ok := s.(storekit.Verifier); ok {
			checkVerify(t, v)
		}
	})
	t.Run("Tenants", func(t *testing.T) {
		// Each tenant's "k" is its own record and expires on its own; a
		// purge of the store removes every tenant's expired keys and no
		// live one.
		s, ret, c := r.open(t, keyTTL)
		a, err := tenant.Scope(s, "a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := tenant.Scope(s, "a/k") // built to collide with "a" + "k"
		if err != nil {
			t.Fatal(err)
		}
		st := stream("T", "x")
		if _, err := keyedAppend(t, a, st, "k"); err != nil {
			t.Fatal(err)
		}
		c.Advance(keyTTL / 2)
		if _, err := keyedAppend(t, b, st, "k"); err != nil {
			t.Fatalf("tenant b's key k while a's lives: %v", err)
		}
		c.Advance(keyTTL / 2)
		if _, err := a.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("tenant a's expired key: %v, want ErrNotFound", err)
		}
		if rec, err := b.LoadIdempotency(ctx(t), "k"); err != nil || rec.Key != "k" || rec.Stream != st {
			t.Errorf("tenant b's live key = %+v, %v", rec, err)
		}
		_, err = keyedAppend(t, b, st, "k")
		wantDup(t, "tenant b's live key", err)
		if n, err := ret.PurgeExpiredKeys(ctx(t)); err != nil || n != 1 {
			t.Fatalf("PurgeExpiredKeys = %d, %v; want 1 (tenant a's)", n, err)
		}
		if _, err := b.LoadIdempotency(ctx(t), "k"); err != nil {
			t.Errorf("tenant b's key after the purge: %v", err)
		}
		if _, err := keyedAppend(t, a, st, "k"); err != nil {
			t.Errorf("tenant a's purged key recorded again: %v", err)
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		if r.f.Reopen == nil {
			t.Skip("RetentionFactory.Reopen is nil: an in-memory store")
		}
		s, _, c := r.open(t, keyTTL)
		st := stream("T", "a")
		if _, err := keyedAppend(t, s, st, "k"); err != nil {
			t.Fatal(err)
		}
		s, _ = r.reopen(t, s, keyTTL, c)
		_, err := keyedAppend(t, s, st, "k")
		wantDup(t, "a live key after a reopen", err)
		c.Advance(keyTTL)
		if _, err := keyedAppend(t, s, st, "k"); err != nil {
			t.Errorf("an expired key after a reopen: %v", err)
		}
		// A shorter TTL applies to the records already stored.
		c.Advance(keyTTL / 2)
		s, _ = r.reopen(t, s, keyTTL/4, c)
		if _, err := s.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("a key older than a shortened TTL: %v, want ErrNotFound", err)
		}
	})
}

// checkVerify fails t when v's Verify finds a problem.
func checkVerify(t *testing.T, v storekit.Verifier) {
	t.Helper()
	rep, err := v.Verify(ctx(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify: %s", p)
	}
}

// truncationLog appends, to streams A, B and C: A1 B1 A2 B2 A3 C1 C2
// (positions 1 to 7).
func truncationLog(t *testing.T, s runtime.Store) (a, b, c runtime.StreamID) {
	t.Helper()
	a, b, c = stream("T", "A"), stream("T", "B"), stream("U", "C")
	for _, st := range []runtime.StreamID{a, b, a, b, a, c, c} {
		mustAppend(t, s, st, runtime.AnyVersion, EventsWith(st.ID, 1)...)
	}
	return a, b, c
}

func positions(recs []runtime.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Position
	}
	return out
}

// wantTruncated checks that ReadStream(st, after) fails with a
// *runtime.TruncatedError naming st and through, before any record.
func wantTruncated(t *testing.T, s runtime.Store, st runtime.StreamID, after, through uint64) {
	t.Helper()
	recs, err := Collect(s.ReadStream(ctx(t), st, after))
	var te *runtime.TruncatedError
	if !errors.As(err, &te) || !errors.Is(err, runtime.ErrTruncated) {
		t.Fatalf("ReadStream(%s, after %d) = %d records, %v; want a *runtime.TruncatedError", st, after, len(recs), err)
	}
	if len(recs) != 0 || te.Stream != st || te.After != after || te.Through != through {
		t.Errorf("ReadStream(%s, after %d): %d records, %+v; want none, then {%s %d %d}", st, after, len(recs), *te, st, after, through)
	}
}

func (r *retentionHarness) testTruncate(t *testing.T) {
	t.Run("Readers", func(t *testing.T) {
		s, ret, _ := r.open(t, 0)
		a, b, c := truncationLog(t, s)
		if p, err := ret.Truncated(ctx(t)); err != nil || p != 0 {
			t.Fatalf("Truncated of a new store = %d, %v", p, err)
		}
		res, err := ret.TruncateLog(ctx(t), 4)
		if err != nil || res != (lifecycle.TruncateResult{Through: 4, Removed: 4}) {
			t.Fatalf("TruncateLog(4) = %+v, %v; want {4 4}", res, err)
		}
		r.checkTruncated(t, s, ret, a, b, c)
		// The log goes on where it was.
		res2 := mustAppend(t, s, a, 3, Events(1)...)
		if res2.FirstVersion != 4 || res2.FirstPosition != 8 {
			t.Errorf("append after truncation: %+v, want version 4 at position 8", res2)
		}
		if got := positions(readStream(t, s, a, 2)); !slices.Equal(got, []uint64{5, 8}) {
			t.Errorf("ReadStream(A, after 2) = positions %v, want [5 8]", got)
		}
		// Subscribe from 0 starts at the first kept position.
		var subscribed []uint64
		for rec, err := range runtime.Subscribe(ctx(t), s, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if subscribed = append(subscribed, rec.Position); rec.Position == 8 {
				break
			}
		}
		if !slices.Equal(subscribed, []uint64{5, 6, 7, 8}) {
			t.Errorf("Subscribe(0) = positions %v, want [5 6 7 8]", subscribed)
		}
	})
	t.Run("Again", func(t *testing.T) {
		s, ret, _ := r.open(t, 0)
		truncationLog(t, s)
		if _, err := ret.TruncateLog(ctx(t), 2); err != nil {
			t.Fatal(err)
		}
		for _, through := range []uint64{0, 1, 2} {
			if res, err := ret.TruncateLog(ctx(t), through); err != nil || res != (lifecycle.TruncateResult{Through: 2}) {
				t.Errorf("TruncateLog(%d) after TruncateLog(2) = %+v, %v; want {2 0}", through, res, err)
			}
		}
		if res, err := ret.TruncateLog(ctx(t), 5); err != nil || res != (lifecycle.TruncateResult{Through: 5, Removed: 3}) {
			t.Errorf("TruncateLog(5) after TruncateLog(2) = %+v, %v; want {5 3}", res, err)
		}
		if got := positions(readAll(t, s, 0)); !slices.Equal(got, []uint64{6, 7}) {
			t.Errorf("ReadAll(0) = positions %v, want [6 7]", got)
		}
	})
	t.Run("KeepsNewest", func(t *testing.T) {
		s, ret, _ := r.open(t, 0)
		if res, err := ret.TruncateLog(ctx(t), 0); err != nil || res != (lifecycle.TruncateResult{}) {
			t.Errorf("TruncateLog(0) of an empty store = %+v, %v; want nothing done", res, err)
		}
		truncationLog(t, s)
		for _, through := range []uint64{7, 8, 1 << 40} {
			if _, err := ret.TruncateLog(ctx(t), through); !errors.Is(err, runtime.ErrInvalid) {
				t.Errorf("TruncateLog(%d) with head 7: %v, want ErrInvalid", through, err)
			}
		}
		if got := len(readAll(t, s, 0)); got != 7 {
			t.Errorf("a refused truncation removed events: %d left of 7", got)
		}
	})
	t.Run("Plan", func(t *testing.T) {
		s, _, _ := r.open(t, 0)
		a, b, _ := truncationLog(t, s)
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: a, Version: 3, Schema: "s", Data: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: b, Version: 1, Schema: "s", Data: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		for name, pos := range map[string]uint64{"ahead": 9, "at": 4, "behind": 2, "rebuild": 0} {
			if err := s.SaveCheckpoint(ctx(t), name, pos); err != nil {
				t.Fatal(err)
			}
		}
		p, err := lifecycle.PlanTruncation(ctx(t), s, 4)
		if err != nil {
			t.Fatal(err)
		}
		if p.From != 1 || p.Through != 4 || p.Events != 4 || p.Streams != 2 || p.UncoveredCount != 1 || !slices.Equal(p.Uncovered, []runtime.StreamID{b}) {
			t.Errorf("PlanTruncation(4) = %+v; want 1..4, 4 events, 2 streams, B uncovered (snapshot at 1 of 2)", p)
		}
		if _, ok := s.(lifecycle.CheckpointLister); ok {
			want := []lifecycle.CheckpointInfo{{Name: "behind", Position: 2}, {Name: "rebuild", Position: 0}}
			if p.BehindCount != 2 || !slices.Equal(p.Behind, want) {
				t.Errorf("PlanTruncation(4) behind = %d %v; want %v", p.BehindCount, p.Behind, want)
			}
		}
	})
	t.Run("ConcurrentReads", func(t *testing.T) {
		// Readers racing with truncations see whole runs of versions (and
		// positions) from where they asked, or a truncation error: never a
		// gap, never a corruption error.
		s, ret, _ := r.open(t, 0)
		hot := stream("T", "hot")
		for i := range 25 {
			mustAppend(t, s, hot, runtime.AnyVersion, EventsWith("hot", 100)...)
			mustAppend(t, s, stream("T", fmt.Sprint("cold", i)), runtime.NoStream, Events(20)...)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var prev uint64
					for rec, err := range s.ReadAll(ctx(t), 0) {
						if err != nil {
							if !errors.Is(err, runtime.ErrTruncated) {
								t.Errorf("ReadAll during truncations: %v, want records or ErrTruncated", err)
							}
							break
						}
						if prev != 0 && rec.Position != prev+1 {
							t.Errorf("ReadAll during truncations yielded position %d after %d", rec.Position, prev)
							break
						}
						prev = rec.Position
					}
				}
			}()
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					next := uint64(1)
					for rec, err := range s.ReadStream(ctx(t), hot, 0) {
						if err != nil {
							if !errors.Is(err, runtime.ErrTruncated) {
								t.Errorf("ReadStream during truncations: %v, want records or ErrTruncated", err)
							}
							break
						}
						if rec.Version != next {
							t.Errorf("ReadStream during truncations yielded version %d after %d", rec.Version, next-1)
							break
						}
						next++
					}
				}
			}()
		}
		for through := uint64(100); through < 2900; through += 150 {
			if _, err := ret.TruncateLog(ctx(t), through); err != nil {
				t.Error(err)
				break
			}
		}
		close(stop)
		wg.Wait()
	})
	t.Run("OvertakenRead", func(t *testing.T) {
		// A truncation past where a running read has got to: the read goes
		// on whole (a store that reads a snapshot) or ends with
		// ErrTruncated, and never skips.
		s, ret, _ := r.open(t, 0)
		hot := stream("T", "hot")
		for range 25 {
			mustAppend(t, s, hot, runtime.AnyVersion, EventsWith("hot", 100)...)
		}
		mustAppend(t, s, stream("T", "last"), runtime.NoStream, Events(1)...)
		reads := map[string]func() iter.Seq2[runtime.Record, error]{
			"ReadAll":    func() iter.Seq2[runtime.Record, error] { return s.ReadAll(ctx(t), 0) },
			"ReadStream": func() iter.Seq2[runtime.Record, error] { return s.ReadStream(ctx(t), hot, 0) },
		}
		through := uint64(1500)
		for _, name := range []string{"ReadAll", "ReadStream"} {
			var prev uint64
			n := 0
			for rec, err := range reads[name]() {
				if err != nil {
					if !errors.Is(err, runtime.ErrTruncated) {
						t.Errorf("%s overtaken by a truncation: %v, want ErrTruncated", name, err)
					}
					break
				}
				if prev != 0 && rec.Position != prev+1 {
					t.Errorf("%s overtaken by a truncation yielded position %d after %d", name, rec.Position, prev)
					break
				}
				prev = rec.Position
				if n++; n == 1 {
					if _, err := ret.TruncateLog(ctx(t), through); err != nil {
						t.Fatal(err)
					}
				}
			}
			through += 500
		}
	})
	t.Run("Checkpoints", func(t *testing.T) {
		s, _, _ := r.open(t, 0)
		cl, ok := s.(lifecycle.CheckpointLister)
		if !ok {
			t.Skip("the store does not implement lifecycle.CheckpointLister")
		}
		acme, err := tenant.Scope(s, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if err := acme.SaveCheckpoint(ctx(t), "p", 7); err != nil {
			t.Fatal(err)
		}
		for _, c := range []lifecycle.CheckpointInfo{{Name: "b", Position: 2}, {Name: "a\x00", Position: 3}, {Name: "a", Position: 1}, {Name: "b", Position: 5}} {
			if err := s.SaveCheckpoint(ctx(t), c.Name, c.Position); err != nil {
				t.Fatal(err)
			}
		}
		var got []lifecycle.CheckpointInfo
		for c, err := range cl.Checkpoints(ctx(t)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, c)
		}
		want := []lifecycle.CheckpointInfo{{Name: "@4:acme/p", Position: 7}, {Name: "a", Position: 1}, {Name: "a\x00", Position: 3}, {Name: "b", Position: 5}}
		if !slices.Equal(got, want) {
			t.Errorf("Checkpoints = %q, want %q (bytewise by name)", got, want)
		}
	})
	t.Run("Tenants", func(t *testing.T) {
		s, ret, _ := r.open(t, 0)
		acme, err := tenant.Scope(s, "acme")
		if err != nil {
			t.Fatal(err)
		}
		st := stream("T", "x")
		mustAppend(t, acme, st, runtime.NoStream, Events(2)...)
		mustAppend(t, s, st, runtime.NoStream, Events(1)...)
		mustAppend(t, acme, st, 2, Events(1)...)
		if _, err := ret.TruncateLog(ctx(t), 2); err != nil {
			t.Fatal(err)
		}
		wantTruncated(t, acme, st, 0, 2)
		if got := positions(readStream(t, acme, st, 2)); !slices.Equal(got, []uint64{4}) {
			t.Errorf("tenant ReadStream(after 2) = positions %v, want [4]", got)
		}
		if got := positions(readAll(t, acme, 0)); !slices.Equal(got, []uint64{4}) {
			t.Errorf("tenant ReadAll(0) = positions %v, want [4]", got)
		}
		if got := positions(readStream(t, s, st, 0)); !slices.Equal(got, []uint64{3}) {
			t.Errorf("untenanted ReadStream = positions %v, want [3]", got)
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		if r.f.Reopen == nil {
			t.Skip("RetentionFactory.Reopen is nil: an in-memory store")
		}
		s, ret, c := r.open(t, 0)
		a, b, cs := truncationLog(t, s)
		if _, err := ret.TruncateLog(ctx(t), 4); err != nil {
			t.Fatal(err)
		}
		s, ret = r.reopen(t, s, 0, c)
		r.checkTruncated(t, s, ret, a, b, cs)
		if res := mustAppend(t, s, cs, 2, Events(1)...); res.FirstPosition != 8 {
			t.Errorf("append after truncation and reopen at position %d, want 8", res.FirstPosition)
		}
	})
}

// checkTruncated checks what readers see of truncationLog truncated
// through 4: A1 B1 A2 B2 gone, A3 C1 C2 kept.
func (r *retentionHarness) checkTruncated(t *testing.T, s runtime.Store, ret lifecycle.Retention, a, b, c runtime.StreamID) {
	t.Helper()
	if p, err := ret.Truncated(ctx(t)); err != nil || p != 4 {
		t.Errorf("Truncated = %d, %v; want 4", p, err)
	}
	for _, after := range []uint64{0, 3, 4} {
		if got := positions(readAll(t, s, after)); !slices.Equal(got, []uint64{5, 6, 7}) {
			t.Errorf("ReadAll(after %d) = positions %v, want [5 6 7]", after, got)
		}
	}
	if got := positions(readAll(t, s, 5)); !slices.Equal(got, []uint64{6, 7}) {
		t.Errorf("ReadAll(after 5) = positions %v, want [6 7]", got)
	}
	if h := head(t, s); h != 7 {
		t.Errorf("Head = %d, want 7", h)
	}
	if v := version(t, s, a); v != 3 {
		t.Errorf("StreamVersion(A) = %d, want 3", v)
	}
	if v := version(t, s, b); v != 2 {
		t.Errorf("StreamVersion(B) = %d, want 2", v)
	}
	wantTruncated(t, s, a, 0, 2)
	wantTruncated(t, s, a, 1, 2)
	wantTruncated(t, s, b, 0, 2)
	wantTruncated(t, s, b, 1, 2)
	if got := positions(readStream(t, s, a, 2)); !slices.Equal(got, []uint64{5}) {
		t.Errorf("ReadStream(A, after 2) = positions %v, want [5]", got)
	}
	if got := readStream(t, s, b, 2); len(got) != 0 {
		t.Errorf("ReadStream(B, after 2) = %d records, want none", len(got))
	}
	if got := positions(readStream(t, s, c, 0)); !slices.Equal(got, []uint64{6, 7}) {
		t.Errorf("ReadStream(C, after 0) = positions %v, want [6 7]", got)
	}
	if n := stats(t, s).Events; n != 3 {
		t.Errorf("Stats.Events = %d, want 3", n)
	}
	if v, ok := s.(storekit.Verifier); ok {
		checkVerify(t, v)
	}
}
