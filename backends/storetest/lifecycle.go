package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// method is one call of every Store method, used by the Closed and Context
// tests. call returns the method's error (for iterators: the first error
// yielded) and how many records an iterator yielded.
type method struct {
	name string
	call func(c context.Context, s runtime.Store) (int, error)
}

func methods(st runtime.StreamID) []method {
	iterErr := func(seq func(func(runtime.Record, error) bool)) (int, error) {
		n := 0
		for _, err := range seq {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	return []method{
		{"Append", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.Append(c, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1)})
			return 0, err
		}},
		{"AppendKeyed", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.Append(c, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "fresh"})
			return 0, err
		}},
		{"ReadStream", func(c context.Context, s runtime.Store) (int, error) { return iterErr(s.ReadStream(c, st, 0)) }},
		{"ReadAll", func(c context.Context, s runtime.Store) (int, error) { return iterErr(s.ReadAll(c, 0)) }},
		{"StreamVersion", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.StreamVersion(c, st)
			return 0, err
		}},
		{"Head", func(c context.Context, s runtime.Store) (int, error) { _, err := s.Head(c); return 0, err }},
		{"Wait", func(c context.Context, s runtime.Store) (int, error) {
			// After the head, so that only the error can end it.
			_, err := s.Wait(c, 1<<40)
			return 0, err
		}},
		{"SaveSnapshot", func(c context.Context, s runtime.Store) (int, error) {
			return 0, s.SaveSnapshot(c, runtime.Snapshot{Stream: st, Version: 10, Data: []byte("s")})
		}},
		{"LoadSnapshot", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.LoadSnapshot(c, st)
			return 0, err
		}},
		{"SaveCheckpoint", func(c context.Context, s runtime.Store) (int, error) { return 0, s.SaveCheckpoint(c, "p", 99) }},
		{"LoadCheckpoint", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.LoadCheckpoint(c, "p")
			return 0, err
		}},
		{"SaveIdempotency", func(c context.Context, s runtime.Store) (int, error) {
			return 0, s.SaveIdempotency(c, runtime.IdempotencyRecord{Key: "other", Stream: st, Version: 1})
		}},
		{"LoadIdempotency", func(c context.Context, s runtime.Store) (int, error) {
			_, err := s.LoadIdempotency(c, "k")
			return 0, err
		}},
		{"Stats", func(c context.Context, s runtime.Store) (int, error) { _, err := s.Stats(c); return 0, err }},
		{"Flush", func(c context.Context, s runtime.Store) (int, error) { return 0, s.Flush(c) }},
	}
}

// populate writes one of everything so that reads after Close or with a
// cancelled context would have something to return.
func populate(t *testing.T, s runtime.Store, st runtime.StreamID) {
	t.Helper()
	mustAppend(t, s, st, runtime.NoStream, Events(3)...)
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 3, Events: Events(1), IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 2, Data: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx(t), "p", 2); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) testClosed(t *testing.T) {
	st := stream("T", "closed")
	s := h.open(t)
	populate(t, s, st)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, m := range methods(st) {
		t.Run(m.name, func(t *testing.T) {
			n, err := m.call(ctx(t), s)
			if !errors.Is(err, runtime.ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", m.name, err)
			}
			if n != 0 {
				t.Errorf("%s after Close yielded %d records", m.name, n)
			}
		})
	}
	t.Run("Close", func(t *testing.T) {
		if err := s.Close(); !errors.Is(err, runtime.ErrClosed) {
			t.Errorf("second Close: %v, want ErrClosed", err)
		}
	})
}

func (h *harness) testContext(t *testing.T) {
	st := stream("T", "ctx")
	s := h.open(t)
	populate(t, s, st)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, m := range methods(st) {
		t.Run(m.name, func(t *testing.T) {
			before := capture(t, s, st)
			ck, ckErr := s.LoadCheckpoint(ctx(t), "p")
			snap, snapErr := s.LoadSnapshot(ctx(t), st)
			n, err := m.call(cancelled, s)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", m.name, err)
			}
			if n != 0 {
				t.Errorf("%s with a cancelled context yielded %d records", m.name, n)
			}
			unchanged(t, s, st, before)
			if ck2, err := s.LoadCheckpoint(ctx(t), "p"); ck2 != ck || (err == nil) != (ckErr == nil) {
				t.Errorf("checkpoint changed by a cancelled call: %d, %v", ck2, err)
			}
			if snap2, err := s.LoadSnapshot(ctx(t), st); snap2.Version != snap.Version || (err == nil) != (snapErr == nil) {
				t.Errorf("snapshot changed by a cancelled call: v%d, %v", snap2.Version, err)
			}
			if _, err := s.LoadIdempotency(ctx(t), "fresh"); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("idempotency key recorded by a cancelled call: %v", err)
			}
		})
	}
	// Close takes no context; the store still works after all that.
	mustAppend(t, s, st, 4, Events(1)...)
}

// reopen closes s and opens it again through the factory.
func (h *harness) reopen(t *testing.T, s runtime.Store) runtime.Store {
	t.Helper()
	s2 := h.f.Reopen(t, s)
	if s2 == nil {
		t.Fatal("storetest: Factory.Reopen returned nil")
	}
	cs := &closer{s: s2}
	t.Cleanup(func() { cs.close(t) })
	return s2
}

func (h *harness) testReopen(t *testing.T) {
	if h.f.Reopen == nil {
		t.Skip("Factory.Reopen is nil: an in-memory store")
	}
	t.Run("Empty", func(t *testing.T) {
		s := h.reopen(t, h.open(t))
		if hd := head(t, s); hd != 0 {
			t.Errorf("Head of a reopened empty store = %d", hd)
		}
		res := mustAppend(t, s, stream("T", "x"), runtime.NoStream, Events(2)...)
		if res.FirstPosition != 1 || res.LastVersion != 2 {
			t.Errorf("first append after reopen: %+v", res)
		}
	})
	t.Run("CheckpointBackToZero", func(t *testing.T) {
		// A projection rebuild writes 0; it must not come back as the old
		// position (or as missing) after a restart.
		s := h.open(t)
		for _, p := range []uint64{9, 0} {
			if err := s.SaveCheckpoint(ctx(t), "cqrsgen:rebuild:bank:balances", p); err != nil {
				t.Fatal(err)
			}
		}
		s = h.reopen(t, s)
		if p, err := s.LoadCheckpoint(ctx(t), "cqrsgen:rebuild:bank:balances"); err != nil || p != 0 {
			t.Errorf("LoadCheckpoint after saving 9, then 0, then reopening = %d, %v; want 0", p, err)
		}
	})
	t.Run("Everything", func(t *testing.T) {
		s := h.open(t)
		a, b := stream("T", "a"), stream("T", "a\x00")
		mustAppend(t, s, a, runtime.NoStream, Events(3)...)
		evs := Events(2)
		evs[0].Time = fixedTime
		mustAppend(t, s, b, runtime.NoStream, evs...)
		if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 3, Events: Events(1), IdempotencyKey: "k1"}); err != nil {
			t.Fatal(err)
		}
		idem := runtime.IdempotencyRecord{Key: "k2", Stream: b, Version: 2, Position: 5, Time: fixedTime}
		if err := s.SaveIdempotency(ctx(t), idem); err != nil {
			t.Fatal(err)
		}
		snap := runtime.Snapshot{Stream: a, Version: 4, Schema: "v1", Data: []byte("state"), Time: fixedTime}
		if err := s.SaveSnapshot(ctx(t), snap); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckpoint(ctx(t), "proj", 3); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		k1, err := s.LoadIdempotency(ctx(t), "k1")
		if err != nil {
			t.Fatal(err)
		}
		allBefore := readAll(t, s, 0)
		statsBefore := stats(t, s)

		for round := range 2 {
			s = h.reopen(t, s)
			all := readAll(t, s, 0)
			if len(all) != len(allBefore) {
				t.Fatalf("round %d: %d events after reopen, want %d", round, len(all), len(allBefore))
			}
			for i := range all {
				if msg := diffRecord(allBefore[i], all[i]); msg != "" {
					t.Errorf("round %d: event %d after reopen: %s", round, i, msg)
				}
			}
			sa := stats(t, s)
			if sa.Events != statsBefore.Events || sa.Streams != statsBefore.Streams || sa.Snapshots != statsBefore.Snapshots ||
				sa.Checkpoints != statsBefore.Checkpoints || sa.IdempotencyKeys != statsBefore.IdempotencyKeys || sa.Head != statsBefore.Head {
				t.Errorf("round %d: Stats after reopen %+v, before %+v", round, sa, statsBefore)
			}
			if got, err := s.LoadSnapshot(ctx(t), a); err != nil {
				t.Errorf("round %d: LoadSnapshot after reopen: %v", round, err)
			} else {
				checkSnapshot(t, got, snap)
			}
			if _, err := s.LoadSnapshot(ctx(t), b); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("round %d: LoadSnapshot(%s) after reopen: %v, want ErrNotFound", round, b, err)
			}
			if p, err := s.LoadCheckpoint(ctx(t), "proj"); err != nil || p != 3+uint64(round) {
				t.Errorf("round %d: LoadCheckpoint after reopen = %d, %v; want %d", round, p, err, 3+round)
			}
			if got, err := s.LoadIdempotency(ctx(t), "k2"); err != nil {
				t.Errorf("round %d: LoadIdempotency after reopen: %v", round, err)
			} else {
				checkIdem(t, "after reopen", got, idem)
			}
			// Keys still block appends and saves.
			_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 99, Events: Events(1), IdempotencyKey: "k1"})
			wantDuplicate(t, "keyed append after reopen", err, k1)
			wantDuplicate(t, "SaveIdempotency after reopen", s.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: "k2", Stream: a, Version: 1}), idem)
			// Versions and conflicts continue.
			va := version(t, s, a)
			_, err = s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: va - 1, Events: Events(1)})
			wantConflict(t, "stale append after reopen", err, a, va-1, va)
			_, err = s.Append(ctx(t), runtime.AppendRequest{Stream: b, Expected: runtime.NoStream, Events: Events(1)})
			wantConflict(t, "NoStream append after reopen", err, b, runtime.NoStream, 2)
			// Positions continue without gaps.
			hd := head(t, s)
			res := mustAppend(t, s, a, va, Events(2)...)
			if res.FirstVersion != va+1 || res.FirstPosition != hd+1 || res.LastPosition != hd+2 {
				t.Errorf("round %d: append after reopen %+v, want versions from %d, positions %d..%d", round, res, va+1, hd+1, hd+2)
			}
			if err := s.SaveCheckpoint(ctx(t), "proj", 4+uint64(round)); err != nil {
				t.Fatal(err)
			}
			allBefore = readAll(t, s, 0)
			statsBefore = stats(t, s)
		}
	})
}
