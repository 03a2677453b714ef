package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

func (h *harness) testSnapshots(t *testing.T) {
	t.Run("NotFound", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "snap")
		if _, err := s.LoadSnapshot(ctx(t), st); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadSnapshot of a missing stream: %v, want ErrNotFound", err)
		}
		mustAppend(t, s, st, runtime.NoStream, Events(2)...)
		if _, err := s.LoadSnapshot(ctx(t), st); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadSnapshot of a stream without snapshots: %v, want ErrNotFound", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := h.open(t)
		cases := []runtime.Snapshot{
			{Stream: stream("T", "1"), Version: 3, Schema: "sha256:abc\x00", Data: []byte("state\x00\xff"), Time: fixedTime},
			{Stream: stream("T", "2"), Version: 1, Schema: "", Data: nil, Time: fixedTime.Add(time.Nanosecond)},
			{Stream: stream("T", "3"), Version: runtime.MaxVersion, Schema: "s", Data: []byte{}, Time: fixedTime},
			{Stream: stream("T", "4"), Version: 9, Schema: "big", Data: bytes.Repeat([]byte{1, 2, 3, 0}, 1<<18), Time: fixedTime},
		}
		for _, c := range cases {
			if err := s.SaveSnapshot(ctx(t), c); err != nil {
				t.Fatalf("SaveSnapshot(%s v%d): %v", c.Stream, c.Version, err)
			}
		}
		for _, c := range cases {
			got, err := s.LoadSnapshot(ctx(t), c.Stream)
			if err != nil {
				t.Errorf("LoadSnapshot(%s): %v", c.Stream, err)
				continue
			}
			checkSnapshot(t, got, c)
		}
	})
	t.Run("LatestWins", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "latest")
		for _, v := range []uint64{2, 5, 9} {
			if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: v, Schema: "s", Data: []byte{byte(v)}, Time: fixedTime}); err != nil {
				t.Fatal(err)
			}
			got, err := s.LoadSnapshot(ctx(t), st)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, got, runtime.Snapshot{Stream: st, Version: v, Schema: "s", Data: []byte{byte(v)}, Time: fixedTime})
		}
	})
	t.Run("NeverBackwards", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "backwards")
		want := runtime.Snapshot{Stream: st, Version: 5, Schema: "new", Data: []byte("five"), Time: fixedTime}
		if err := s.SaveSnapshot(ctx(t), want); err != nil {
			t.Fatal(err)
		}
		for _, v := range []uint64{4, 1} {
			// An older snapshot is not an error; it is simply not kept.
			if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: v, Schema: "old", Data: []byte("older")}); err != nil {
				t.Errorf("SaveSnapshot of an older version %d: %v, want nil", v, err)
			}
			got, err := s.LoadSnapshot(ctx(t), st)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, got, want)
		}
	})
	t.Run("NoAliasing", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "alias")
		data := []byte("snapshot")
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 1, Data: data, Time: fixedTime}); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X'
		got, err := s.LoadSnapshot(ctx(t), st)
		if err != nil {
			t.Fatal(err)
		}
		want := runtime.Snapshot{Stream: st, Version: 1, Data: []byte("snapshot"), Time: fixedTime}
		checkSnapshot(t, got, want)
		for i := range got.Data {
			got.Data[i] = '!'
		}
		got, err = s.LoadSnapshot(ctx(t), st)
		if err != nil {
			t.Fatal(err)
		}
		checkSnapshot(t, got, want)
	})
}

func checkSnapshot(t *testing.T, got, want runtime.Snapshot) {
	t.Helper()
	if got.Stream != want.Stream || got.Version != want.Version || got.Schema != want.Schema || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("snapshot = %s v%d schema %q data %q, want %s v%d schema %q data %q",
			got.Stream, got.Version, got.Schema, trunc(got.Data), want.Stream, want.Version, want.Schema, trunc(want.Data))
	}
	if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
		t.Errorf("snapshot of %s time %v, want %v in UTC", want.Stream, got.Time, want.Time.UTC())
	}
}

func (h *harness) testCheckpoints(t *testing.T) {
	t.Run("NotFound", func(t *testing.T) {
		s := h.open(t)
		if _, err := s.LoadCheckpoint(ctx(t), "projection"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadCheckpoint of a missing name: %v, want ErrNotFound", err)
		}
	})
	t.Run("SaveLoad", func(t *testing.T) {
		s := h.open(t)
		for _, p := range []uint64{0, 1, 42, 1 << 40, ^uint64(0)} {
			if err := s.SaveCheckpoint(ctx(t), "p", p); err != nil {
				t.Fatal(err)
			}
			if got, err := s.LoadCheckpoint(ctx(t), "p"); err != nil || got != p {
				t.Errorf("LoadCheckpoint = %d, %v; want %d", got, err, p)
			}
		}
	})
	t.Run("Backwards", func(t *testing.T) {
		s := h.open(t)
		for _, p := range []uint64{100, 7, 0, 3} {
			if err := s.SaveCheckpoint(ctx(t), "rebuild", p); err != nil {
				t.Fatal(err)
			}
			if got, err := s.LoadCheckpoint(ctx(t), "rebuild"); err != nil || got != p {
				t.Errorf("after saving %d: LoadCheckpoint = %d, %v", p, got, err)
			}
		}
		if n := stats(t, s).Checkpoints; n != 1 {
			t.Errorf("Stats.Checkpoints = %d after saving one name four times, want 1", n)
		}
	})
}

func checkIdem(t *testing.T, what string, got, want runtime.IdempotencyRecord) {
	t.Helper()
	if got.Key != want.Key || got.Stream != want.Stream || got.Version != want.Version || got.Position != want.Position ||
		(!want.Time.IsZero() && !got.Time.Equal(want.Time)) {
		t.Errorf("%s: record %+v, want %+v", what, got, want)
	}
	if got.Time.IsZero() {
		t.Errorf("%s: record has a zero Time", what)
	}
}

// wantDuplicate checks that err is a *DuplicateError carrying first.
func wantDuplicate(t *testing.T, what string, err error, first runtime.IdempotencyRecord) {
	t.Helper()
	var de *runtime.DuplicateError
	if !errors.As(err, &de) {
		t.Errorf("%s: got %v, want a *runtime.DuplicateError", what, err)
		return
	}
	if !errors.Is(err, runtime.ErrDuplicate) {
		t.Errorf("%s: errors.Is(%v, ErrDuplicate) is false", what, err)
	}
	checkIdem(t, what+": DuplicateError.Existing", de.Existing, first)
}

func (h *harness) testIdempotency(t *testing.T) {
	t.Run("NotFound", func(t *testing.T) {
		s := h.open(t)
		if _, err := s.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadIdempotency of a missing key: %v, want ErrNotFound", err)
		}
	})
	t.Run("SaveLoad", func(t *testing.T) {
		s := h.open(t)
		rec := runtime.IdempotencyRecord{Key: "k1", Stream: stream("T", "1"), Version: 4, Position: 17, Time: fixedTime}
		if err := s.SaveIdempotency(ctx(t), rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadIdempotency(ctx(t), "k1")
		if err != nil {
			t.Fatal(err)
		}
		checkIdem(t, "LoadIdempotency", got, rec)
		if got.Time.Location() != time.UTC {
			t.Errorf("idempotency time %v not in UTC", got.Time)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		s := h.open(t)
		first := runtime.IdempotencyRecord{Key: "k", Stream: stream("T", "1"), Version: 1, Position: 1, Time: fixedTime}
		if err := s.SaveIdempotency(ctx(t), first); err != nil {
			t.Fatal(err)
		}
		second := runtime.IdempotencyRecord{Key: "k", Stream: stream("T", "2"), Version: 9, Position: 9, Time: fixedTime.Add(time.Hour)}
		wantDuplicate(t, "second SaveIdempotency", s.SaveIdempotency(ctx(t), second), first)
		got, err := s.LoadIdempotency(ctx(t), "k")
		if err != nil {
			t.Fatal(err)
		}
		checkIdem(t, "after a duplicate", got, first)
		if n := stats(t, s).IdempotencyKeys; n != 1 {
			t.Errorf("Stats.IdempotencyKeys = %d, want 1", n)
		}
	})
	t.Run("Append", func(t *testing.T) {
		s := h.open(t)
		mustAppend(t, s, stream("T", "other"), runtime.NoStream, Events(2)...)
		st := stream("T", "keyed")
		mustAppend(t, s, st, runtime.NoStream, Events(1)...)
		res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 1, Events: Events(3), IdempotencyKey: "cmd-1"})
		if err != nil {
			t.Fatal(err)
		}
		first := runtime.IdempotencyRecord{Key: "cmd-1", Stream: st, Version: res.LastVersion, Position: res.LastPosition}
		if res.LastVersion != 4 || res.LastPosition != 6 {
			t.Errorf("keyed append result %+v, want version 4 at position 6", res)
		}
		got, err := s.LoadIdempotency(ctx(t), "cmd-1")
		if err != nil {
			t.Fatalf("LoadIdempotency after a keyed append: %v", err)
		}
		checkIdem(t, "keyed append", got, first)
		first.Time = got.Time

		dups := []struct {
			name string
			req  runtime.AppendRequest
		}{
			{"Same", runtime.AppendRequest{Stream: st, Expected: 1, Events: Events(3), IdempotencyKey: "cmd-1"}},
			{"RightVersion", runtime.AppendRequest{Stream: st, Expected: 4, Events: Events(1), IdempotencyKey: "cmd-1"}},
			{"BeforeExpectedVersion", runtime.AppendRequest{Stream: st, Expected: 99, Events: Events(1), IdempotencyKey: "cmd-1"}},
			{"NoStream", runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: Events(1), IdempotencyKey: "cmd-1"}},
			{"OtherStream", runtime.AppendRequest{Stream: stream("T", "new"), Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "cmd-1"}},
		}
		for _, d := range dups {
			t.Run("Duplicate/"+d.name, func(t *testing.T) {
				before := capture(t, s, d.req.Stream)
				_, err := s.Append(ctx(t), d.req)
				wantDuplicate(t, "append with a used key", err, first)
				unchanged(t, s, d.req.Stream, before)
			})
		}
		t.Run("Duplicate/SaveIdempotency", func(t *testing.T) {
			err := s.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: "cmd-1", Stream: st, Version: 1, Position: 1})
			wantDuplicate(t, "SaveIdempotency of a key used by Append", err, first)
		})
	})
	t.Run("SavedKeyBlocksAppend", func(t *testing.T) {
		s := h.open(t)
		first := runtime.IdempotencyRecord{Key: "k", Stream: stream("T", "x"), Version: 3, Position: 0, Time: fixedTime}
		if err := s.SaveIdempotency(ctx(t), first); err != nil {
			t.Fatal(err)
		}
		st := stream("T", "x")
		before := capture(t, s, st)
		_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "k"})
		wantDuplicate(t, "append with a saved key", err, first)
		unchanged(t, s, st, before)
	})
	t.Run("FailedAppendRecordsNothing", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "x")
		mustAppend(t, s, st, runtime.NoStream, Events(1)...)
		for _, req := range []runtime.AppendRequest{
			{Stream: st, Expected: 0, Events: Events(1), IdempotencyKey: "k"},
			{Stream: st, Expected: 1, Events: []runtime.EventData{{Name: ""}}, IdempotencyKey: "k"},
		} {
			if _, err := s.Append(ctx(t), req); err == nil {
				t.Fatal("bad append succeeded")
			}
			if _, err := s.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("after a failed keyed append LoadIdempotency = %v, want ErrNotFound", err)
			}
		}
		if n := stats(t, s).IdempotencyKeys; n != 0 {
			t.Errorf("Stats.IdempotencyKeys = %d after failed appends, want 0", n)
		}
		res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 1, Events: Events(1), IdempotencyKey: "k"})
		if err != nil {
			t.Fatalf("retry with the right version: %v", err)
		}
		if res.LastVersion != 2 {
			t.Errorf("retry got version %d, want 2", res.LastVersion)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := h.open(t)
		st := stream("T", "race")
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		results := make([]runtime.AppendResult, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(2), IdempotencyKey: "once"})
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		var win runtime.AppendResult
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				win = results[i]
			case !errors.Is(err, runtime.ErrDuplicate):
				t.Errorf("goroutine %d: %v, want success or ErrDuplicate", i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d appends with one key succeeded, want exactly 1", winners)
		}
		rec, err := s.LoadIdempotency(ctx(t), "once")
		if err != nil {
			t.Fatal(err)
		}
		checkIdem(t, "winner", rec, runtime.IdempotencyRecord{Key: "once", Stream: st, Version: win.LastVersion, Position: win.LastPosition})
		for _, err := range errs {
			if err != nil {
				wantDuplicate(t, "loser", err, rec)
			}
		}
		if v := version(t, s, st); v != 2 {
			t.Errorf("stream version %d, want 2 (one batch)", v)
		}
	})
}

func (h *harness) testStats(t *testing.T) {
	s := h.open(t)
	st := stats(t, s)
	if st.Events != 0 || st.Streams != 0 || st.Snapshots != 0 || st.Checkpoints != 0 || st.IdempotencyKeys != 0 || st.Head != 0 || st.DiskBytes < 0 {
		t.Errorf("Stats of an empty store: %+v", st)
	}
	a, b, c := stream("T", "a"), stream("T", "b"), stream("U", "a")
	mustAppend(t, s, a, runtime.NoStream, Events(3)...)
	mustAppend(t, s, b, runtime.NoStream, Events(1)...)
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: c, Expected: runtime.NoStream, Events: Events(2), IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 3, Events: Events(1), IdempotencyKey: "k2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: b, Expected: 0, Events: Events(5)}); err == nil {
		t.Fatal("conflicting append succeeded")
	}
	if err := s.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: "k3", Stream: b, Version: 1, Position: 4}); err != nil {
		t.Fatal(err)
	}
	for _, sn := range []runtime.Snapshot{{Stream: a, Version: 2}, {Stream: a, Version: 4}, {Stream: c, Version: 1}} {
		if err := s.SaveSnapshot(ctx(t), sn); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p1", "p2", "p1"} {
		if err := s.SaveCheckpoint(ctx(t), name, 3); err != nil {
			t.Fatal(err)
		}
	}
	got := stats(t, s)
	want := runtime.Stats{Events: 7, Streams: 3, Snapshots: 2, Checkpoints: 2, IdempotencyKeys: 3, Head: 7}
	if got.Events != want.Events || got.Streams != want.Streams || got.Snapshots != want.Snapshots ||
		got.Checkpoints != want.Checkpoints || got.IdempotencyKeys != want.IdempotencyKeys || got.Head != want.Head {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	if got.DiskBytes < 0 {
		t.Errorf("Stats.DiskBytes = %d", got.DiskBytes)
	}
}
