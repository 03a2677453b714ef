package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// testDelete checks lifecycle.StreamDeleter on stores that implement it.
func (h *harness) testDelete(t *testing.T) {
	if _, ok := h.open(t).(lifecycle.StreamDeleter); !ok {
		t.Log("the store does not implement lifecycle.StreamDeleter: no delete rules to check")
		return
	}
	t.Run("Soft", h.deleteSoft)
	t.Run("Hard", h.deleteHard)
	t.Run("SoftThenHard", h.deleteSoftThenHard)
	t.Run("DryRun", h.deleteDryRun)
	t.Run("BadInput", h.deleteBadInput)
	t.Run("RaceAppends/Soft", func(t *testing.T) { h.deleteRace(t, runtime.SoftDelete) })
	t.Run("RaceAppends/Hard", func(t *testing.T) { h.deleteRace(t, runtime.HardDelete) })
	t.Run("Tenants", h.deleteTenants)
}

func mustDelete(t *testing.T, s runtime.Store, st runtime.StreamID, mode runtime.DeleteMode) lifecycle.DeleteResult {
	t.Helper()
	res, err := lifecycle.DeleteStream(ctx(t), s, st, mode)
	if err != nil {
		t.Fatalf("DeleteStream(%s, %s): %v", st, mode, err)
	}
	return res
}

// checkVerifies runs the store's Verify, when it has one, and fails on any
// problem: the holes a hard delete leaves are not corruption.
func checkVerifies(t *testing.T, s runtime.Store) {
	t.Helper()
	v, ok := s.(storekit.Verifier)
	if !ok {
		return
	}
	rep, err := v.Verify(ctx(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify after delete: %s", p)
	}
}

// checkRefused checks that every kind of append to the deleted stream st
// fails with a *DeletedError naming tomb.
func checkRefused(t *testing.T, s runtime.Store, st runtime.StreamID, tomb runtime.Tombstone) {
	t.Helper()
	for _, expected := range []uint64{runtime.NoStream, tomb.Version - 1, tomb.Version, runtime.StreamExists, runtime.AnyVersion} {
		_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: expected, Events: Events(1)})
		var de *runtime.DeletedError
		if !errors.Is(err, runtime.ErrStreamDeleted) || !errors.As(err, &de) {
			t.Errorf("Append to deleted %s with expected %d: %v; want a *DeletedError", st, expected, err)
			continue
		}
		if de.Tombstone.Stream != st || de.Tombstone.Mode != tomb.Mode || de.Tombstone.Position != tomb.Position {
			t.Errorf("Append to deleted %s: tombstone %+v, want %+v", st, de.Tombstone, tomb)
		}
	}
	_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "fresh key " + st.ID})
	if !errors.Is(err, runtime.ErrStreamDeleted) {
		t.Errorf("keyed Append to deleted %s: %v; want ErrStreamDeleted", st, err)
	}
	// A snapshot saved late (by a command that loaded before the delete)
	// must not bring a hard-deleted stream's state back.
	err = s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: tomb.Version + 5, Schema: "late", Data: []byte("late state")})
	if !errors.Is(err, runtime.ErrStreamDeleted) {
		t.Errorf("SaveSnapshot of deleted %s: %v; want ErrStreamDeleted", st, err)
	}
	if snap, err := s.LoadSnapshot(ctx(t), st); err == nil && snap.Schema == "late" {
		t.Errorf("a snapshot saved after the delete of %s was stored", st)
	}
	// Nor may a late idempotency record name it again.
	late := "late key " + st.ID
	err = s.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: late, Stream: st, Version: tomb.Version - 1})
	if !errors.Is(err, runtime.ErrStreamDeleted) {
		t.Errorf("SaveIdempotency naming deleted %s: %v; want ErrStreamDeleted", st, err)
	}
	if _, err := s.LoadIdempotency(ctx(t), late); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("a key saved after the delete of %s was stored: %v", st, err)
	}
}

// checkTombstone checks the last record of recs is st's tombstone t.
func checkTombstone(t *testing.T, recs []runtime.Record, want runtime.Tombstone) {
	t.Helper()
	if len(recs) == 0 {
		t.Fatalf("no records; want the tombstone of %s", want.Stream)
	}
	last := recs[len(recs)-1]
	got, err := runtime.TombstoneOf(last)
	if err != nil {
		t.Fatalf("last record %s v%d %q: %v", last.Stream, last.Version, last.Name, err)
	}
	if got.Time.IsZero() {
		t.Errorf("tombstone has no time")
	}
	got.Time = want.Time
	if got != want {
		t.Errorf("tombstone read back = %+v, want %+v", got, want)
	}
}

func (h *harness) deleteSoft(t *testing.T) {
	s := h.open(t)
	a, b := stream("T", "a"), stream("T", "b")
	mustAppend(t, s, a, runtime.NoStream, Events(2)...)
	mustAppend(t, s, b, runtime.NoStream, Events(1)...)
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 2, Events: Events(1), IdempotencyKey: "ka"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: a, Version: 3, Schema: "s", Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	before := head(t, s)
	res := mustDelete(t, s, a, runtime.SoftDelete)
	tomb := res.Tombstone
	want := runtime.Tombstone{Stream: a, Mode: runtime.SoftDelete, Version: 4, Position: before + 1, Time: tomb.Time, Events: 3}
	if tomb != want || res.Already || res.Events != 3 || res.Snapshot || res.IdempotencyKeys != 0 {
		t.Fatalf("soft delete result = %+v, want tombstone %+v and 3 events hidden", res, want)
	}
	if hd := head(t, s); hd != before+1 {
		t.Errorf("Head after the delete = %d, want %d (the tombstone's position)", hd, before+1)
	}
	if v := version(t, s, a); v != 4 {
		t.Errorf("StreamVersion of the deleted stream = %d, want 4 (its tombstone)", v)
	}
	recs := readStream(t, s, a, 0)
	if len(recs) != 4 {
		t.Fatalf("ReadStream of the soft-deleted stream: %d records, want its 3 events and the tombstone", len(recs))
	}
	checkTombstone(t, recs, tomb)
	all := readAll(t, s, 0)
	if len(all) != int(before)+1 {
		t.Fatalf("ReadAll: %d records, want %d (the events stay)", len(all), before+1)
	}
	checkTombstone(t, all, tomb)
	if got, err := lifecycle.StreamTombstone(ctx(t), s, a); err != nil || got.Position != tomb.Position {
		t.Errorf("StreamTombstone = %+v, %v", got, err)
	}
	if _, err := lifecycle.StreamTombstone(ctx(t), s, b); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("StreamTombstone of a live stream: %v; want ErrNotFound", err)
	}
	checkRefused(t, s, a, tomb)
	// The key recorded before the delete still answers with its first result.
	_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 2, Events: Events(1), IdempotencyKey: "ka"})
	var dup *runtime.DuplicateError
	if !errors.As(err, &dup) || dup.Existing.Version != 3 {
		t.Errorf("retry of a keyed append after a soft delete: %v; want its first result", err)
	}
	if _, err := s.LoadSnapshot(ctx(t), a); err != nil {
		t.Errorf("LoadSnapshot after a soft delete: %v (kept)", err)
	}
	again := mustDelete(t, s, a, runtime.SoftDelete)
	if !again.Already || again.Tombstone.Position != tomb.Position {
		t.Errorf("second soft delete = %+v; want Already with the first tombstone", again)
	}
	if hd := head(t, s); hd != before+1 {
		t.Errorf("a repeated delete moved the head to %d", hd)
	}
	mustAppend(t, s, b, 1, Events(1)...)
	checkVerifies(t, s)
	if h.f.Reopen != nil {
		s = h.reopen(t, s)
		checkTombstone(t, readStream(t, s, a, 0), tomb)
		checkRefused(t, s, a, tomb)
		checkVerifies(t, s)
	}
}

func (h *harness) deleteHard(t *testing.T) {
	s := h.open(t)
	a, b := stream("T", "a"), stream("T", "a\x00") // b's key starts with a's
	for i := range 3 {
		mustAppend(t, s, a, runtime.AnyVersion, EventsWith(fmt.Sprint("a", i), 2)...)
		if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: b, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: fmt.Sprint("kb", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"ka1", "ka2"} {
		if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: "ka3", Stream: a, Version: 8}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []runtime.StreamID{a, b} {
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 2, Schema: "s", Data: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	kept := readStream(t, s, b, 0)
	statsBefore, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	before := head(t, s)
	res := mustDelete(t, s, a, runtime.HardDelete)
	tomb := res.Tombstone
	want := runtime.Tombstone{Stream: a, Mode: runtime.HardDelete, Version: 9, Position: before + 1, Time: tomb.Time, Events: 8, Removed: 8}
	if tomb != want || res.Already || res.Events != 8 || !res.Snapshot || res.IdempotencyKeys != 3 {
		t.Fatalf("hard delete result = %+v, want tombstone %+v, 8 events, the snapshot and 3 keys removed", res, want)
	}
	check := func(s runtime.Store) {
		t.Helper()
		recs := readStream(t, s, a, 0)
		if len(recs) != 1 {
			t.Fatalf("ReadStream of the hard-deleted stream: %d records, want the tombstone only", len(recs))
		}
		checkTombstone(t, recs, tomb)
		if recs := readStream(t, s, a, 8); len(recs) != 1 {
			t.Errorf("ReadStream after version 8: %d records, want the tombstone", len(recs))
		}
		if recs := readStream(t, s, a, 9); len(recs) != 0 {
			t.Errorf("ReadStream after the tombstone: %d records", len(recs))
		}
		if v := version(t, s, a); v != 9 {
			t.Errorf("StreamVersion = %d, want 9 (the tombstone)", v)
		}
		all := readAll(t, s, 0)
		if len(all) != len(kept)+1 {
			t.Fatalf("ReadAll after the hard delete: %d records, want %d of the other stream and the tombstone", len(all), len(kept)+1)
		}
		for i, rec := range all[:len(all)-1] {
			if rec.Stream != b || rec.Position != kept[i].Position || string(rec.Data) != string(kept[i].Data) {
				t.Errorf("ReadAll record %d = %s v%d @%d; want %s v%d @%d", i, rec.Stream, rec.Version, rec.Position, b, kept[i].Version, kept[i].Position)
			}
		}
		checkTombstone(t, all, tomb)
		if hd := head(t, s); hd != before+1 {
			t.Errorf("Head = %d, want %d", hd, before+1)
		}
		if _, err := s.LoadSnapshot(ctx(t), a); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadSnapshot of the hard-deleted stream: %v; want ErrNotFound", err)
		}
		if _, err := s.LoadSnapshot(ctx(t), b); err != nil {
			t.Errorf("LoadSnapshot of the other stream: %v", err)
		}
		for _, key := range []string{"ka1", "ka2", "ka3"} {
			if _, err := s.LoadIdempotency(ctx(t), key); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("LoadIdempotency(%q) of the hard-deleted stream: %v; want ErrNotFound", key, err)
			}
		}
		for i := range 3 {
			if _, err := s.LoadIdempotency(ctx(t), fmt.Sprint("kb", i)); err != nil {
				t.Errorf("LoadIdempotency of the other stream's key: %v", err)
			}
		}
		st, err := s.Stats(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.Events != statsBefore.Events-8+1 || st.Snapshots != statsBefore.Snapshots-1 || st.IdempotencyKeys != statsBefore.IdempotencyKeys-3 {
			t.Errorf("Stats after the hard delete = %+v; before %+v (8 events out, 1 tombstone in, 1 snapshot and 3 keys out)", st, statsBefore)
		}
		checkRefused(t, s, a, tomb)
		checkVerifies(t, s)
	}
	check(s)
	if again := mustDelete(t, s, a, runtime.HardDelete); !again.Already {
		t.Errorf("second hard delete = %+v; want Already", again)
	}
	if again := mustDelete(t, s, a, runtime.SoftDelete); !again.Already || again.Tombstone.Mode != runtime.HardDelete {
		t.Errorf("soft delete of a hard-deleted stream = %+v; want Already with the hard tombstone", again)
	}
	if h.f.Reopen != nil {
		s = h.reopen(t, s)
		checkTombstone(t, readStream(t, s, a, 0), tomb)
		if _, err := s.LoadSnapshot(ctx(t), a); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadSnapshot of the hard-deleted stream after a reopen: %v; want ErrNotFound", err)
		}
		checkRefused(t, s, a, tomb)
		checkVerifies(t, s)
	}
}

func (h *harness) deleteSoftThenHard(t *testing.T) {
	s := h.open(t)
	a := stream("T", "a")
	mustAppend(t, s, a, runtime.NoStream, Events(3)...)
	soft := mustDelete(t, s, a, runtime.SoftDelete)
	hard := mustDelete(t, s, a, runtime.HardDelete)
	want := runtime.Tombstone{Stream: a, Mode: runtime.HardDelete, Version: 5, Position: soft.Tombstone.Position + 1,
		Time: hard.Tombstone.Time, Events: 3, Removed: 4}
	if hard.Tombstone != want || hard.Already || hard.Events != 3 {
		t.Fatalf("hard delete after a soft one = %+v; want tombstone %+v", hard, want)
	}
	recs := readAll(t, s, 0)
	if len(recs) != 1 {
		t.Fatalf("ReadAll: %d records, want the hard tombstone only (the soft one is removed with the events)", len(recs))
	}
	checkTombstone(t, recs, want)
	checkRefused(t, s, a, want)
	checkVerifies(t, s)
}

func (h *harness) deleteDryRun(t *testing.T) {
	s := h.open(t)
	a := stream("T", "a")
	mustAppend(t, s, a, runtime.NoStream, Events(2)...)
	if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: a, Expected: 2, Events: Events(1), IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: a, Version: 3, Schema: "s", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []runtime.DeleteMode{runtime.SoftDelete, runtime.HardDelete} {
		plan, err := lifecycle.PlanDelete(ctx(t), s, a, mode)
		if err != nil {
			t.Fatalf("PlanDelete(%s): %v", mode, err)
		}
		hard := mode == runtime.HardDelete
		if plan.Events != 3 || plan.Snapshot != hard || (plan.IdempotencyKeys == 1) != hard || plan.Tombstone.Version != 4 || plan.Already {
			t.Errorf("PlanDelete(%s) = %+v", mode, plan)
		}
	}
	if hd := head(t, s); hd != 3 {
		t.Errorf("Head after dry runs = %d, want 3: a dry run writes nothing", hd)
	}
	mustAppend(t, s, a, 3, Events(1)...)
	if _, err := s.LoadIdempotency(ctx(t), "k"); err != nil {
		t.Errorf("LoadIdempotency after a dry run: %v", err)
	}
}

func (h *harness) deleteBadInput(t *testing.T) {
	s := h.open(t)
	if _, err := lifecycle.DeleteStream(ctx(t), s, stream("T", "missing"), runtime.HardDelete); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("delete of a missing stream: %v; want ErrNotFound", err)
	}
	if _, err := lifecycle.DeleteStream(ctx(t), s, stream("", "x"), runtime.HardDelete); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("delete of an invalid stream: %v; want ErrInvalid", err)
	}
	mustAppend(t, s, stream("T", "x"), runtime.NoStream, Events(1)...)
	if _, err := s.(lifecycle.StreamDeleter).DeleteStream(ctx(t), lifecycle.DeleteRequest{Stream: stream("T", "x"), Mode: 7}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("delete with mode 7: %v; want ErrInvalid", err)
	}
	_, err := s.Append(ctx(t), runtime.AppendRequest{Stream: stream("T", "x"), Expected: runtime.AnyVersion,
		Events: []runtime.EventData{{Name: runtime.TombstoneEvent, Data: []byte{1, 2, 0, 0}}}})
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("append of an event named %q: %v; want ErrInvalid", runtime.TombstoneEvent, err)
	}
}

// deleteRace runs many appenders on one stream while it is deleted: every
// append either committed before the tombstone or failed with
// ErrStreamDeleted, and what the stream held at the tombstone is exactly
// what was acknowledged.
func (h *harness) deleteRace(t *testing.T, mode runtime.DeleteMode) {
	s := h.open(t)
	a, other := stream("T", "race"), stream("T", "other")
	mustAppend(t, s, a, runtime.NoStream, Events(1)...)
	const writers, perWriter = 16, 20
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[uint64]uint64{1: 1} // position → version
		del   lifecycle.DeleteResult
		start = make(chan struct{})
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range perWriter {
				req := runtime.AppendRequest{Stream: a, Expected: runtime.AnyVersion, Events: EventsWith(fmt.Sprint("w", w, "-", i, "-"), 1+i%2)}
				if w%4 == 0 {
					if v, err := s.StreamVersion(ctx(t), a); err == nil {
						req.Expected = v
					}
				}
				res, err := s.Append(ctx(t), req)
				switch {
				case err == nil:
					mu.Lock()
					for k := range res.LastVersion - res.FirstVersion + 1 {
						acked[res.FirstPosition+k] = res.FirstVersion + k
					}
					mu.Unlock()
				case errors.Is(err, runtime.ErrStreamDeleted):
					return
				case errors.Is(err, runtime.ErrConflict):
				default:
					t.Errorf("Append: %v", err)
					return
				}
				if _, err := s.Append(ctx(t), runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: Events(1)}); err != nil {
					t.Errorf("Append to another stream: %v", err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		var err error
		if del, err = lifecycle.DeleteStream(ctx(t), s, a, mode); err != nil {
			t.Errorf("DeleteStream: %v", err)
		}
	}()
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	tomb := del.Tombstone
	var maxPos, maxVer uint64
	for pos, ver := range acked {
		if pos >= tomb.Position || ver >= tomb.Version {
			t.Errorf("acknowledged append at position %d version %d is not before the tombstone (position %d version %d)", pos, ver, tomb.Position, tomb.Version)
		}
		maxPos, maxVer = max(maxPos, pos), max(maxVer, ver)
	}
	if tomb.Events != uint64(len(acked)) || maxVer != tomb.Events || del.Events != tomb.Events {
		t.Errorf("tombstone says %d events (result %d), %d were acknowledged up to version %d", tomb.Events, del.Events, len(acked), maxVer)
	}
	recs := readStream(t, s, a, 0)
	if mode == runtime.SoftDelete {
		if len(recs) != len(acked)+1 {
			t.Fatalf("ReadStream: %d records, want the %d acknowledged events and the tombstone", len(recs), len(acked))
		}
		for _, rec := range recs[:len(recs)-1] {
			if acked[rec.Position] != rec.Version {
				t.Errorf("ReadStream holds version %d at position %d, never acknowledged", rec.Version, rec.Position)
			}
		}
	} else if len(recs) != 1 {
		t.Fatalf("ReadStream after the hard delete: %d records, want the tombstone", len(recs))
	}
	checkTombstone(t, recs, tomb)
	prev := uint64(0)
	for _, rec := range readAll(t, s, 0) {
		if rec.Position <= prev {
			t.Fatalf("ReadAll: position %d after %d", rec.Position, prev)
		}
		prev = rec.Position
		if rec.Stream == a && mode == runtime.HardDelete && !runtime.IsTombstone(rec) {
			t.Errorf("ReadAll yields version %d of the hard-deleted stream", rec.Version)
		}
	}
	checkRefused(t, s, a, tomb)
	checkVerifies(t, s)
}

// deleteTenants deletes a stream through one tenant's view: the same
// stream of every other tenant, and outside tenants, is untouched, and the
// tombstone reaches the tenant's readers as the tenant names the stream.
func (h *harness) deleteTenants(t *testing.T) {
	s := h.open(t)
	data, raw := populateTenants(t, s)
	names := tenantNames()
	victim := data[names[0]].view
	st := stream("acct", "x")
	for _, mode := range []runtime.DeleteMode{runtime.SoftDelete, runtime.HardDelete} {
		res, err := lifecycle.DeleteStream(ctx(t), victim, st, mode)
		if err != nil {
			t.Fatalf("DeleteStream through tenant %q (%s): %v", victim.Name(), mode, err)
		}
		if res.Tombstone.Stream != st {
			t.Errorf("the tombstone names %s, want the tenant's %s", res.Tombstone.Stream, st)
		}
		if mode == runtime.HardDelete && (res.IdempotencyKeys != 1 || !res.Snapshot) {
			t.Errorf("hard delete through a tenant removed %d keys (want 1, the tenant's) and snapshot %v", res.IdempotencyKeys, res.Snapshot)
		}
	}
	recs, err := Collect(victim.ReadAll(ctx(t), 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !runtime.IsTombstone(recs[0]) || recs[0].Stream != st {
		t.Fatalf("the tenant's log after the hard delete = %v; want its tombstone only", recs)
	}
	checkRefused(t, victim, st, mustTombstone(t, victim, st))
	if _, err := victim.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("the tenant's key after the hard delete: %v", err)
	}
	for _, name := range names[1:] {
		view := data[name].view
		got := readStream(t, view, st, 0)
		if len(got) != 1 || string(got[0].Data) != name || runtime.IsTombstone(got[0]) {
			t.Errorf("tenant %q's stream after another tenant's delete = %v", name, got)
		}
		if _, err := view.LoadIdempotency(ctx(t), "k"); err != nil {
			t.Errorf("tenant %q's key after another tenant's delete: %v", name, err)
		}
		if _, err := view.LoadSnapshot(ctx(t), st); err != nil {
			t.Errorf("tenant %q's snapshot after another tenant's delete: %v", name, err)
		}
	}
	got := readStream(t, s, st, 0)
	if len(got) != 1 || got[0].Position != raw.LastPosition {
		t.Errorf("the unscoped stream after a tenant's delete = %v", got)
	}
	if _, err := lifecycle.DeleteStream(ctx(t), tenant.All(s), st, runtime.HardDelete); err == nil {
		t.Errorf("DeleteStream through tenant.All succeeded; want a refusal")
	}
	checkVerifies(t, s)
}

func mustTombstone(t *testing.T, s runtime.Store, st runtime.StreamID) runtime.Tombstone {
	t.Helper()
	tomb, err := lifecycle.StreamTombstone(ctx(t), s, st)
	if err != nil {
		t.Fatalf("StreamTombstone(%s): %v", st, err)
	}
	return tomb
}
