package pebble

import (
	"context"
	"errors"
	goruntime "runtime"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestLoneRequestsSkipTheQueue checks that requests made one at a time are
// served in the caller's goroutine (Store.alone) when every append is
// synced, and through the writer's queue with WithNoSync.
func TestLoneRequestsSkipTheQueue(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []Option
		wantQueued int64
	}{
		{"synced", nil, 0},
		{"nosync", []Option{WithNoSync(0)}, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openT(t, t.TempDir(), tc.opts...)
			defer s.Close()
			st := runtime.StreamID{Type: "A", ID: "1"}
			for i := range 10 {
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: uint64(i), Events: []runtime.EventData{ev("x")}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 3, Events: []runtime.EventData{ev("late")}}); !errors.Is(err, runtime.ErrConflict) {
				t.Fatalf("stale append: %v, want ErrConflict", err)
			}
			if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: st, Version: 10, Schema: "s", Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveCheckpoint(ctx, "p", 10); err != nil {
				t.Fatal(err)
			}
			if q := s.enqueued.Load(); q != tc.wantQueued {
				t.Fatalf("%d requests went through the queue, want %d", q, tc.wantQueued)
			}
			recs, err := collect(t, s.ReadStream(ctx, st, 0))
			if err != nil || len(recs) != 10 {
				t.Fatalf("ReadStream: %d records, %v", len(recs), err)
			}
			if pos, err := s.LoadCheckpoint(ctx, "p"); err != nil || pos != 10 {
				t.Fatalf("LoadCheckpoint = %d, %v", pos, err)
			}
		})
	}
}

// holdLoneAppend appends one event to stream x of s in a new goroutine
// and waits until that append is served alone and held between apply and
// settle (see Store.loneApplied), failing the test if it is not served
// alone. Its result arrives on the returned channel after release, which
// may be called more than once: tests defer it so that a failure does not
// leave the store's Close waiting.
func holdLoneAppend(t *testing.T, s *Store, x runtime.StreamID) (result <-chan error, release func()) {
	t.Helper()
	applied, held := make(chan struct{}), make(chan struct{})
	var hold, free sync.Once
	s.loneApplied = func() {
		hold.Do(func() {
			close(applied)
			<-held
		})
	}
	release = func() { free.Do(func() { close(held) }) }
	res := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), runtime.AppendRequest{Stream: x, Expected: runtime.NoStream, Events: []runtime.EventData{ev("x1")}})
		res <- err
	}()
	select {
	case <-applied:
	case err := <-res:
		t.Fatalf("the first append was not served alone (it returned %v without waiting)", err)
	}
	return res, release
}

// writerExiting reports whether the writer goroutine has begun to exit.
func (s *Store) writerExiting() bool {
	s.wlock.Lock()
	defer s.wlock.Unlock()
	return s.wclosed
}

// neverWithin reports whether ready stays false over many yields of the
// processor: a bounded look, not a time limit, for where the correct code
// can never make it true and a broken one would at once.
func neverWithin(ready func() bool) bool {
	for range 2000 {
		if ready() {
			return false
		}
		goruntime.Gosched()
	}
	return true
}

// TestLoneGroupSettledLate holds a lone append between apply and settle
// while a later append goes through the writer and is acknowledged first:
// the later group's fsync covers the lone one, so both are visible at
// once, and settling the lone group afterwards must not move the
// watermarks or counters back.
func TestLoneGroupSettledLate(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	x, y := runtime.StreamID{Type: "A", ID: "x"}, runtime.StreamID{Type: "A", ID: "y"}
	lone, release := holdLoneAppend(t, s, x)
	defer release()
	res, err := s.Append(ctx, runtime.AppendRequest{Stream: y, Expected: runtime.NoStream, Events: []runtime.EventData{ev("y1")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstPosition != 2 {
		t.Fatalf("later append at position %d, want 2", res.FirstPosition)
	}
	check := func(when string) {
		t.Helper()
		if h, err := s.Head(ctx); err != nil || h != 2 {
			t.Fatalf("%s: Head = %d, %v; want 2", when, h, err)
		}
		recs, err := collect(t, s.ReadAll(ctx, 0))
		if err != nil || len(recs) != 2 || recs[0].Stream != x || recs[1].Stream != y {
			t.Fatalf("%s: ReadAll = %v, %v; want x1 then y1", when, recs, err)
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Events != 2 || st.Streams != 2 {
			t.Fatalf("%s: Stats = %+v, %v; want 2 events in 2 streams", when, st, err)
		}
	}
	check("lone group not yet settled")
	release()
	if err := <-lone; err != nil {
		t.Fatalf("lone append: %v", err)
	}
	check("lone group settled")
}

// TestRefusalWaitsForLoneGroup holds a lone append between apply and
// settle and then makes an append that conflicts with it: the conflict
// names the lone append's version, so it may only be answered once that
// version is visible.
func TestRefusalWaitsForLoneGroup(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	x := runtime.StreamID{Type: "A", ID: "x"}
	lone, release := holdLoneAppend(t, s, x)
	defer release()
	type answer struct {
		err     error
		visible uint64
	}
	refused := make(chan answer, 1)
	go func() {
		_, err := s.Append(ctx, runtime.AppendRequest{Stream: x, Expected: runtime.NoStream, Events: []runtime.EventData{ev("again")}})
		v, _ := s.StreamVersion(ctx, x)
		refused <- answer{err, v}
	}()
	// The refusal reaches the syncer (a second group in flight), which
	// must hold it until the lone group is settled.
	var a answer
	answered := func() bool {
		select {
		case a = <-refused:
			return true
		default:
			return false
		}
	}
	for s.inflight.Load() < 2 && !answered() {
		goruntime.Gosched()
	}
	if a.err != nil || !neverWithin(answered) {
		t.Fatalf("the conflict was answered (%v, version %d visible) before the lone append it names was settled", a.err, a.visible)
	}
	release()
	a = <-refused
	var ce *runtime.ConflictError
	if !errors.As(a.err, &ce) || ce.Actual != 1 {
		t.Fatalf("conflicting append: %v, want a conflict with actual version 1", a.err)
	}
	if a.visible != 1 {
		t.Fatalf("StreamVersion right after the conflict = %d, want 1 (the version the conflict names)", a.visible)
	}
	if err := <-lone; err != nil {
		t.Fatalf("lone append: %v", err)
	}
}

// TestCloseWaitsForLoneGroup closes the store while a lone append is
// between apply and settle: Close waits for it, the append succeeds, and
// it is there after reopening.
func TestCloseWaitsForLoneGroup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	x := runtime.StreamID{Type: "A", ID: "x"}
	lone, release := holdLoneAppend(t, s, x)
	defer release()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close waits for the writer goroutine, which on its way out must
	// wait for the lone group.
	for !s.writerExiting() {
		goruntime.Gosched()
	}
	if !neverWithin(func() bool {
		select {
		case <-s.done:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("the writer exited while a lone append was in flight")
	}
	release()
	if err := <-lone; err != nil {
		t.Fatalf("lone append during Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openT(t, dir)
	defer s.Close()
	if v, err := s.StreamVersion(ctx, x); err != nil || v != 1 {
		t.Fatalf("after reopening: StreamVersion = %d, %v; want 1", v, err)
	}
}
