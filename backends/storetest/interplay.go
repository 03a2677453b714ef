package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// The data lifecycle operations together: deletion, truncation, key expiry
// and crypto-shredding applied to the same streams, directly and through a
// tenant's view. Each feature has its own rules elsewhere; these check what
// holds when they meet.
//
// The lifecycle API is called only through the helpers below, so that a
// move of that API touches this file in one place.

func lcDelete(t *testing.T, s runtime.Store, st runtime.StreamID, mode runtime.DeleteMode) lifecycle.DeleteResult {
	t.Helper()
	res, err := lifecycle.DeleteStream(ctx(t), s, st, mode)
	if err != nil {
		t.Fatalf("DeleteStream(%s, %s): %v", st, mode, err)
	}
	return res
}

func lcRetention(t *testing.T, s runtime.Store) lifecycle.Retention {
	t.Helper()
	r, ok := s.(lifecycle.Retention)
	if !ok {
		t.Fatalf("storetest: %T does not implement lifecycle.Retention", s)
	}
	return r
}

func lcTruncate(t *testing.T, s runtime.Store, through uint64) lifecycle.TruncateResult {
	t.Helper()
	res, err := lcRetention(t, s).TruncateLog(ctx(t), through)
	if err != nil {
		t.Fatalf("TruncateLog(%d): %v", through, err)
	}
	return res
}

func lcTruncated(t *testing.T, s runtime.Store) uint64 {
	t.Helper()
	p, err := lcRetention(t, s).Truncated(ctx(t))
	if err != nil {
		t.Fatalf("Truncated: %v", err)
	}
	return p
}

func lcPlanTruncation(t *testing.T, s runtime.Store, through uint64) lifecycle.TruncationPlan {
	t.Helper()
	p, err := lifecycle.PlanTruncation(ctx(t), s, through)
	if err != nil {
		t.Fatalf("PlanTruncation(%d): %v", through, err)
	}
	return p
}

func lcPurge(t *testing.T, s runtime.Store) uint64 {
	t.Helper()
	n, err := lcRetention(t, s).PurgeExpiredKeys(ctx(t))
	if err != nil {
		t.Fatalf("PurgeExpiredKeys: %v", err)
	}
	return n
}

func lcForget(t *testing.T, s runtime.Store, subject string) lifecycle.ForgetResult {
	t.Helper()
	res, err := lifecycle.ForgetSubject(ctx(t), s, subject)
	if err != nil {
		t.Fatalf("ForgetSubject(%q): %v", subject, err)
	}
	return res
}

// lcWorld is one store under test: the store itself and the view the
// operations go through (the store, or a tenant's view of it). In the
// tenant case another tenant writes between the steps, so that positions
// of the view have gaps and its streams share the log.
type lcWorld struct {
	r      *retentionHarness
	store  runtime.Store // the store: truncation, Stats, Verify
	view   runtime.Store // the view of the application: streams, deletes, keys
	clock  *Clock
	ttl    time.Duration
	tenant bool
	noise  int
}

func (r *retentionHarness) lcOpen(t *testing.T, tenanted bool, ttl time.Duration) *lcWorld {
	t.Helper()
	s, _, c := r.open(t, ttl)
	w := &lcWorld{r: r, store: s, view: s, clock: c, ttl: ttl, tenant: tenanted}
	w.scope(t)
	return w
}

func (w *lcWorld) scope(t *testing.T) {
	t.Helper()
	w.view = w.store
	if w.tenant {
		v, err := tenant.Scope(w.store, "acme")
		if err != nil {
			t.Fatal(err)
		}
		w.view = v
	}
}

// other writes one event of another tenant (tenant case only).
func (w *lcWorld) other(t *testing.T) {
	t.Helper()
	if !w.tenant {
		return
	}
	z, err := tenant.Scope(w.store, "zeta")
	if err != nil {
		t.Fatal(err)
	}
	w.noise++
	mustAppend(t, z, stream("T", "a"), runtime.AnyVersion, EventsWith(fmt.Sprint("zeta", w.noise), 1)...)
}

// add appends n events to st, one append each with another tenant's
// event before each, and returns the positions of st's events.
func (w *lcWorld) add(t *testing.T, st runtime.StreamID, n int) []uint64 {
	t.Helper()
	var out []uint64
	for range n {
		w.other(t)
		res := mustAppend(t, w.view, st, runtime.AnyVersion, EventsWith(st.ID, 1)...)
		out = append(out, res.FirstPosition)
	}
	return out
}

func (w *lcWorld) reopen(t *testing.T) bool {
	t.Helper()
	if w.r.f.Reopen == nil {
		return false
	}
	w.store, _ = w.r.reopen(t, w.store, w.ttl, w.clock)
	w.scope(t)
	return true
}

// lcStream is what a stream must read as.
type lcStream struct {
	st runtime.StreamID
	// through > 0: ReadStream(0) fails with a *TruncatedError naming it,
	// and versions are what ReadStream(through) yields.
	through  uint64
	versions []uint64
	// tomb: the stream is deleted in this mode at this version.
	mode runtime.DeleteMode
	tomb uint64
}

// check checks the log of w and the streams want, then again after a
// reopen of a durable store.
func (w *lcWorld) check(t *testing.T, want ...lcStream) {
	t.Helper()
	w.checkOnce(t, want...)
	if w.reopen(t) {
		w.checkOnce(t, want...)
	}
}

func (w *lcWorld) checkOnce(t *testing.T, want ...lcStream) {
	t.Helper()
	truncated := lcTruncated(t, w.store)
	for _, s := range []runtime.Store{w.store, w.view} {
		all := readAll(t, s, 0)
		checkPositions(t, all)
		if len(all) > 0 && all[0].Position <= truncated {
			t.Errorf("ReadAll(0) yields position %d, truncated through %d", all[0].Position, truncated)
		}
		if len(all) == 0 {
			continue
		}
		var sub []uint64
		for rec, err := range runtime.Subscribe(ctx(t), s, 0) {
			if err != nil {
				t.Fatalf("Subscribe(0): %v", err)
			}
			if sub = append(sub, rec.Position); rec.Position >= all[len(all)-1].Position {
				break
			}
		}
		if got := positions(all); !slices.Equal(sub, got) {
			t.Errorf("Subscribe(0) = positions %v; ReadAll(0) = %v", sub, got)
		}
	}
	all := readAll(t, w.store, 0)
	if st := stats(t, w.store); st.Events != uint64(len(all)) {
		t.Errorf("Stats.Events = %d; ReadAll(0) yields %d records", st.Events, len(all))
	}
	if v, ok := w.store.(storekit.Verifier); ok {
		checkVerify(t, v)
	}
	for _, s := range want {
		w.checkStream(t, s)
	}
}

func (w *lcWorld) checkStream(t *testing.T, want lcStream) {
	t.Helper()
	after := uint64(0)
	if want.through > 0 {
		wantTruncated(t, w.view, want.st, 0, want.through)
		after = want.through
	}
	recs, err := Collect(w.view.ReadStream(ctx(t), want.st, after))
	if err != nil {
		t.Errorf("ReadStream(%s, after %d): %v", want.st, after, err)
	}
	var got []uint64
	for _, r := range recs {
		got = append(got, r.Version)
	}
	if !slices.Equal(got, want.versions) {
		t.Errorf("ReadStream(%s, after %d) = versions %v, want %v", want.st, after, got, want.versions)
	}
	if want.mode == 0 {
		return
	}
	if len(recs) > 0 && recs[len(recs)-1].Version == want.tomb {
		if tomb, err := runtime.TombstoneOf(recs[len(recs)-1]); err != nil || tomb.Mode != want.mode {
			t.Errorf("last record of %s: %+v, %v; want a %s tombstone", want.st, tomb, err, want.mode)
		}
	}
	if v := version(t, w.view, want.st); v != want.tomb {
		t.Errorf("StreamVersion(%s) = %d, want %d (its tombstone)", want.st, v, want.tomb)
	}
	_, err = w.view.Append(ctx(t), runtime.AppendRequest{Stream: want.st, Expected: runtime.AnyVersion, Events: Events(1)})
	var de *runtime.DeletedError
	if !errors.As(err, &de) || de.Tombstone.Mode != want.mode || de.Tombstone.Version != want.tomb {
		t.Errorf("Append to deleted %s: %v; want a *DeletedError of its %s tombstone at version %d", want.st, err, want.mode, want.tomb)
	}
	res, err := lifecycle.DeleteStream(ctx(t), w.view, want.st, want.mode)
	if err != nil || !res.Already || res.Tombstone.Version != want.tomb {
		t.Errorf("DeleteStream(%s, %s) again = %+v, %v; want Already with the tombstone at version %d", want.st, want.mode, res, err, want.tomb)
	}
}

// planCovers checks that PlanTruncation(through) lists none of the deleted
// streams as uncovered: a deleted stream is not loaded, so it needs no
// snapshot. (Direct only: the plan names a tenant's streams as stored.)
func (w *lcWorld) planCovers(t *testing.T, through uint64, deleted ...runtime.StreamID) {
	t.Helper()
	if w.tenant {
		return
	}
	p := lcPlanTruncation(t, w.store, through)
	for _, st := range deleted {
		if slices.Contains(p.Uncovered, st) {
			t.Errorf("PlanTruncation(%d) lists the deleted %s as uncovered: %+v", through, st, p)
		}
	}
}

func versions(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// testInterplay checks the lifecycle operations together.
func (r *retentionHarness) testInterplay(t *testing.T) {
	if s, _, _ := r.open(t, 0); !isDeleter(s) {
		t.Log("the store does not implement lifecycle.StreamDeleter: no interplay to check")
		return
	}
	for _, view := range []struct {
		name   string
		tenant bool
	}{{"Direct", false}, {"Tenant", true}} {
		t.Run(view.name, func(t *testing.T) {
			open := func(t *testing.T, ttl time.Duration) *lcWorld { return r.lcOpen(t, view.tenant, ttl) }
			t.Run("HardDeletePartlyTruncated", func(t *testing.T) { lcHardPartlyTruncated(t, open(t, 0)) })
			t.Run("HardDeleteManyTruncated", func(t *testing.T) { lcHardManyTruncated(t, open(t, 0)) })
			t.Run("HardDeleteWhollyTruncated", func(t *testing.T) { lcHardWhollyTruncated(t, open(t, 0)) })
			t.Run("SoftDeleteThenTruncation", func(t *testing.T) { lcSoftThenTruncation(t, open(t, 0)) })
			t.Run("TruncationOverHole", func(t *testing.T) { lcTruncationOverHole(t, open(t, 0)) })
			t.Run("KeysOfDeletedStreams", func(t *testing.T) { lcKeys(t, open(t, time.Hour)) })
			t.Run("ForgetAfterDelete", func(t *testing.T) { lcForgetAfterDelete(t, open(t, 0)) })
			t.Run("Race", func(t *testing.T) { lcRace(t, open(t, 0)) })
		})
	}
	t.Run("TenantRetention", func(t *testing.T) { lcTenantRetention(t, r.lcOpen(t, true, time.Hour)) })
}

// lcTenantRetention: a tenant's view answers lifecycle.Retention for what
// can be scoped to the tenant (where its log starts, its checkpoints, so
// PlanTruncation through the view) and refuses what acts on the whole
// shared store (TruncateLog, PurgeExpiredKeys) with tenant.ErrStoreWide,
// changing nothing.
func lcTenantRetention(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	pa := w.add(t, a, 2)
	w.add(t, b, 1)
	if _, err := keyedAppend(t, w.view, b, "kb"); err != nil {
		t.Fatal(err)
	}
	w.other(t)
	zeta, err := tenant.Scope(w.store, "zeta")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    runtime.Store
		name string
		pos  uint64
	}{{w.view, "p", pa[0]}, {w.view, "q", pa[1] + 100}, {zeta, "p", 1}, {w.store, "admin", 1}} {
		if err := c.s.SaveCheckpoint(ctx(t), c.name, c.pos); err != nil {
			t.Fatal(err)
		}
	}
	ret, ok := w.view.(lifecycle.Retention)
	if !ok {
		t.Fatalf("the tenant view %T does not implement lifecycle.Retention", w.view)
	}
	var got []lifecycle.CheckpointInfo
	for c, err := range w.view.(lifecycle.CheckpointLister).Checkpoints(ctx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if want := []lifecycle.CheckpointInfo{{Name: "p", Position: pa[0]}, {Name: "q", Position: pa[1] + 100}}; !slices.Equal(got, want) {
		t.Errorf("Checkpoints through the view = %v; want the tenant's only, %v", got, want)
	}
	head := stats(t, w.store).Head
	before := stats(t, w.store)
	w.clock.Advance(2 * time.Hour) // kb expires
	if _, err := ret.TruncateLog(ctx(t), head-1); !errors.Is(err, tenant.ErrStoreWide) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("TruncateLog through the view: %v; want tenant.ErrStoreWide and errors.ErrUnsupported", err)
	}
	if n, err := ret.PurgeExpiredKeys(ctx(t)); n != 0 || !errors.Is(err, tenant.ErrStoreWide) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("PurgeExpiredKeys through the view = %d, %v; want tenant.ErrStoreWide and errors.ErrUnsupported", n, err)
	}
	if after := stats(t, w.store); after.Events != before.Events || after.IdempotencyKeys != before.IdempotencyKeys || lcTruncated(t, w.store) != 0 {
		t.Errorf("refused calls changed the store: %+v, then %+v, truncated %d", before, after, lcTruncated(t, w.store))
	}
	if p, err := ret.Truncated(ctx(t)); err != nil || p != 0 {
		t.Errorf("Truncated through the view = %d, %v; want 0", p, err)
	}
	plan, err := lifecycle.PlanTruncation(ctx(t), w.view, pa[1])
	if err != nil {
		t.Fatal(err)
	}
	if plan.Events != 2 || plan.Streams != 1 || !slices.Equal(plan.Uncovered, []runtime.StreamID{a}) ||
		!slices.Equal(plan.Behind, []lifecycle.CheckpointInfo{{Name: "p", Position: pa[0]}}) {
		t.Errorf("PlanTruncation(%d) through the view = %+v; want the tenant's 2 events of %s, uncovered, and checkpoint p behind", pa[1], plan, a)
	}
	through := lcTruncate(t, w.store, pa[1]).Through
	if p, err := ret.Truncated(ctx(t)); err != nil || p != through {
		t.Errorf("Truncated through the view after the store's truncation = %d, %v; want %d", p, err, through)
	}
}

func isDeleter(s runtime.Store) bool {
	_, ok := s.(lifecycle.StreamDeleter)
	return ok
}

// lcHardPartlyTruncated: a hard delete of a stream whose first events were
// truncated removes the rest; the stream reads as its tombstone alone (the
// delete, not the truncation, is what a reader must learn), and later
// truncations over the hole and over the tombstone keep the log whole.
func lcHardPartlyTruncated(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	pa := w.add(t, a, 3)
	w.add(t, b, 1)
	pa = append(pa, w.add(t, a, 2)...)
	w.add(t, b, 1)
	lcTruncate(t, w.store, pa[1]) // a1, a2 and what came before
	w.check(t, lcStream{st: a, through: 2, versions: versions(3, 5)}, lcStream{st: b, versions: versions(1, 2)})

	res := lcDelete(t, w.view, a, runtime.HardDelete)
	if res.Tombstone.Version != 6 || res.Tombstone.Events != 5 || res.Tombstone.Removed != 3 {
		t.Errorf("hard delete of a stream truncated through v2 = %+v; want tombstone v6 of 5 events, 3 removed", res)
	}
	w.check(t, lcStream{st: a, versions: []uint64{6}, mode: runtime.HardDelete, tomb: 6}, lcStream{st: b, versions: versions(1, 2)})

	// A second truncation over the hole (everything before the tombstone).
	before := stats(t, w.store).Events
	tr := lcTruncate(t, w.store, res.Tombstone.Position-1)
	if after := stats(t, w.store).Events; before-after != tr.Removed {
		t.Errorf("truncation over a hole: Removed = %d, Stats.Events went from %d to %d", tr.Removed, before, after)
	}
	w.check(t, lcStream{st: a, versions: []uint64{6}, mode: runtime.HardDelete, tomb: 6}, lcStream{st: b, through: 2})

	// And over the tombstone: the stream stays deleted.
	w.add(t, b, 1)
	lcTruncate(t, w.store, res.Tombstone.Position)
	w.check(t, lcStream{st: a, through: 6, mode: runtime.HardDelete, tomb: 6}, lcStream{st: b, through: 2, versions: []uint64{3}})
}

// lcHardManyTruncated: as lcHardPartlyTruncated with enough events that a
// store's blocks of the log (the memory store's chunks) are dropped whole
// by the truncation before the delete.
func lcHardManyTruncated(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	var through uint64
	for i := range 12 {
		w.other(t)
		res := mustAppend(t, w.view, a, runtime.AnyVersion, EventsWith(fmt.Sprint("a", i), 50)...)
		mustAppend(t, w.view, b, runtime.AnyVersion, EventsWith(fmt.Sprint("b", i), 1)...)
		if i == 9 {
			through = res.LastPosition
		}
	}
	lcTruncate(t, w.store, through)
	w.check(t, lcStream{st: a, through: 500, versions: versions(501, 600)}, lcStream{st: b, through: 9, versions: versions(10, 12)})
	res := lcDelete(t, w.view, a, runtime.HardDelete)
	if res.Tombstone.Version != 601 || res.Tombstone.Events != 600 || res.Tombstone.Removed != 100 {
		t.Errorf("hard delete of a stream truncated through v500 = %+v; want tombstone v601 of 600 events, 100 removed", res)
	}
	w.check(t, lcStream{st: a, versions: []uint64{601}, mode: runtime.HardDelete, tomb: 601}, lcStream{st: b, through: 9, versions: versions(10, 12)})
}

// lcHardWhollyTruncated: a hard delete of a stream whose events were all
// truncated removes nothing but its index and writes the tombstone.
func lcHardWhollyTruncated(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	pa := w.add(t, a, 2)
	w.add(t, b, 1)
	if err := w.view.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: a, Version: 2, Schema: "s", Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	lcTruncate(t, w.store, pa[1])
	w.check(t, lcStream{st: a, through: 2}, lcStream{st: b, versions: []uint64{1}})
	res := lcDelete(t, w.view, a, runtime.HardDelete)
	if res.Tombstone.Version != 3 || res.Tombstone.Removed != 0 || !res.Snapshot {
		t.Errorf("hard delete of a wholly truncated stream = %+v; want tombstone v3, nothing removed but the snapshot", res)
	}
	if _, err := w.view.LoadSnapshot(ctx(t), a); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadSnapshot after the hard delete: %v; want ErrNotFound", err)
	}
	w.check(t, lcStream{st: a, versions: []uint64{3}, mode: runtime.HardDelete, tomb: 3}, lcStream{st: b, versions: []uint64{1}})
}

// lcSoftThenTruncation: a truncation over a soft delete's events and then
// over its tombstone; the stream stays deleted, and a hard delete after
// that removes what is left.
func lcSoftThenTruncation(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	pa := w.add(t, a, 2)
	soft := lcDelete(t, w.view, a, runtime.SoftDelete)
	w.add(t, b, 2)
	lcTruncate(t, w.store, pa[0])
	w.check(t, lcStream{st: a, through: 1, versions: []uint64{2, 3}, mode: runtime.SoftDelete, tomb: 3}, lcStream{st: b, versions: versions(1, 2)})
	w.planCovers(t, soft.Tombstone.Position, a)
	lcTruncate(t, w.store, soft.Tombstone.Position) // over the tombstone
	w.check(t, lcStream{st: a, through: 3, mode: runtime.SoftDelete, tomb: 3}, lcStream{st: b, versions: versions(1, 2)})

	hard := lcDelete(t, w.view, a, runtime.HardDelete)
	if hard.Tombstone.Version != 4 || hard.Tombstone.Events != 2 || hard.Tombstone.Removed != 0 {
		t.Errorf("hard delete after a truncated soft delete = %+v; want tombstone v4 of 2 events, nothing removed", hard)
	}
	w.check(t, lcStream{st: a, versions: []uint64{4}, mode: runtime.HardDelete, tomb: 4}, lcStream{st: b, versions: versions(1, 2)})

	// Soft delete of a partly truncated stream, then hard delete: the soft
	// tombstone and the kept events are removed.
	c := stream("T", "c")
	pc := w.add(t, c, 2)
	lcDelete(t, w.view, c, runtime.SoftDelete)
	w.add(t, b, 1)
	lcTruncate(t, w.store, pc[0])
	hard = lcDelete(t, w.view, c, runtime.HardDelete)
	if hard.Tombstone.Version != 4 || hard.Tombstone.Removed != 2 {
		t.Errorf("hard delete of a soft-deleted, partly truncated stream = %+v; want tombstone v4, 2 removed", hard)
	}
	w.check(t, lcStream{st: c, versions: []uint64{4}, mode: runtime.HardDelete, tomb: 4}, lcStream{st: b, through: 2, versions: []uint64{3}})
}

// lcTruncationOverHole: a truncation across the positions a hard delete
// emptied counts only the events it removed, and the plan agrees.
func lcTruncationOverHole(t *testing.T, w *lcWorld) {
	a, b := stream("T", "a"), stream("T", "b")
	w.add(t, a, 2)
	pb := w.add(t, b, 1)
	w.add(t, a, 1)
	hard := lcDelete(t, w.view, a, runtime.HardDelete)
	w.add(t, b, 1)
	through := hard.Tombstone.Position - 1
	plan := lcPlanTruncation(t, w.store, through)
	before := stats(t, w.store).Events
	tr := lcTruncate(t, w.store, through)
	after := stats(t, w.store).Events
	if tr.Removed != plan.Events || before-after != tr.Removed {
		t.Errorf("truncation through %d over a hole: Removed %d, plan %d events, Stats.Events %d -> %d", through, tr.Removed, plan.Events, before, after)
	}
	if !w.tenant && tr.Removed != 1 {
		t.Errorf("truncation through %d over a hole: Removed %d, want 1 (b1 at %d)", through, tr.Removed, pb[0])
	}
	w.check(t, lcStream{st: a, versions: []uint64{4}, mode: runtime.HardDelete, tomb: 4}, lcStream{st: b, through: 1, versions: []uint64{2}})
	// Again, through the tombstone: nothing counted twice.
	w.planCovers(t, hard.Tombstone.Position, a)
	before = stats(t, w.store).Events
	tr = lcTruncate(t, w.store, hard.Tombstone.Position)
	if after := stats(t, w.store).Events; before-after != tr.Removed || (!w.tenant && tr.Removed != 1) {
		t.Errorf("truncation through the tombstone: Removed %d, Stats.Events %d -> %d", tr.Removed, before, after)
	}
	w.check(t, lcStream{st: a, through: 4, mode: runtime.HardDelete, tomb: 4}, lcStream{st: b, through: 1, versions: []uint64{2}})
}

// lcKeys: idempotency keys of deleted streams under a TTL.
func lcKeys(t *testing.T, w *lcWorld) {
	a, b, c := stream("T", "a"), stream("T", "b"), stream("T", "c")
	first, err := keyedAppend(t, w.view, a, "ka")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyedAppend(t, w.view, b, "kb"); err != nil {
		t.Fatal(err)
	}
	if _, err := keyedAppend(t, w.view, c, "kc"); err != nil {
		t.Fatal(err)
	}
	lcDelete(t, w.view, a, runtime.SoftDelete)
	hard := lcDelete(t, w.view, b, runtime.HardDelete)
	if hard.IdempotencyKeys != 1 {
		t.Errorf("hard delete removed %d keys, want 1", hard.IdempotencyKeys)
	}
	// While the key lives, a retry after a soft delete returns its first
	// result; after a hard delete the key is gone and the retry is refused.
	_, err = keyedAppend(t, w.view, a, "ka")
	var dup *runtime.DuplicateError
	if !errors.As(err, &dup) || dup.Existing.Version != first.LastVersion || dup.Existing.Position != first.LastPosition {
		t.Errorf("keyed retry after a soft delete: %v; want a *DuplicateError of the first result %+v", err, first)
	}
	if _, err := keyedAppend(t, w.view, b, "kb"); !errors.Is(err, runtime.ErrStreamDeleted) {
		t.Errorf("keyed retry after a hard delete: %v; want ErrStreamDeleted", err)
	}
	if _, err := w.view.LoadIdempotency(ctx(t), "kb"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadIdempotency of a hard-deleted stream's key: %v; want ErrNotFound", err)
	}
	// Once expired, a soft-deleted stream's key no longer answers: the
	// retry is a new append, refused.
	w.clock.Advance(2 * time.Hour)
	if _, err := keyedAppend(t, w.view, a, "ka"); !errors.Is(err, runtime.ErrStreamDeleted) {
		t.Errorf("keyed retry with an expired key after a soft delete: %v; want ErrStreamDeleted", err)
	}
	if _, err := w.view.LoadIdempotency(ctx(t), "ka"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadIdempotency of an expired key: %v; want ErrNotFound", err)
	}
	lcDelete(t, w.view, c, runtime.HardDelete) // its key expired, not purged yet
	lcPurge(t, w.store)
	if n := lcPurge(t, w.store); n != 0 {
		t.Errorf("second PurgeExpiredKeys removed %d", n)
	}
	if n := stats(t, w.store).IdempotencyKeys; n != 0 {
		t.Errorf("Stats.IdempotencyKeys after the purge = %d, want 0", n)
	}
	for _, k := range []string{"ka", "kb", "kc"} {
		if _, err := w.view.LoadIdempotency(ctx(t), k); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("LoadIdempotency(%q) after the purge: %v; want ErrNotFound", k, err)
		}
	}
	w.check(t,
		lcStream{st: a, versions: versions(1, 2), mode: runtime.SoftDelete, tomb: 2},
		lcStream{st: b, versions: []uint64{2}, mode: runtime.HardDelete, tomb: 2},
		lcStream{st: c, versions: []uint64{2}, mode: runtime.HardDelete, tomb: 2})
}

// lcForgetAfterDelete: forgetting a subject whose streams were deleted
// (hard: no snapshot is brought back; soft: the kept events read as the
// placeholder) succeeds; the hard-deleted stream is not listed.
func lcForgetAfterDelete(t *testing.T, w *lcWorld) {
	hard, soft, kept := stream("M", "hard"), stream("M", "soft"), stream("M", "kept")
	for _, st := range []runtime.StreamID{hard, soft, kept} {
		w.other(t)
		sealedEvent(t, w.view, st, "alice", st.ID+"@example.com")
		if err := w.view.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 1, Schema: "m", Data: []byte("state of " + st.ID)}); err != nil {
			t.Fatal(err)
		}
	}
	lcDelete(t, w.view, hard, runtime.HardDelete)
	lcDelete(t, w.view, soft, runtime.SoftDelete)
	// A hard-deleted stream holds no sealed data any more: the key store
	// no longer lists it under its subjects, after a reopen too.
	live := []runtime.StreamID{kept, soft}
	for round := 0; ; round++ {
		if got, found, err := keysOf(t, w.view).SubjectStreams(ctx(t), "alice"); err != nil || !found || !slices.Equal(got, live) {
			t.Errorf("SubjectStreams after the deletes (round %d) = %v, %v, %v; want %v", round, got, found, err, live)
		}
		if plan, err := lifecycle.PlanForget(ctx(t), w.view, "alice"); err != nil || !slices.Equal(plan.Streams, live) {
			t.Errorf("PlanForget after the deletes (round %d) = %+v, %v; want streams %v", round, plan, err, live)
		}
		if round > 0 || !w.reopen(t) {
			break
		}
	}
	res := lcForget(t, w.view, "alice")
	if !res.Found || !slices.Equal(res.Streams, live) {
		t.Errorf("ForgetSubject = %+v; want found, streams %v", res, live)
	}
	if _, err := w.view.LoadSnapshot(ctx(t), hard); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadSnapshot of the hard-deleted stream after ForgetSubject: %v; want ErrNotFound", err)
	}
	if snap, err := w.view.LoadSnapshot(ctx(t), kept); err != nil || snap.Schema != lifecycle.ForgottenSchema || len(snap.Data) != 0 {
		t.Errorf("snapshot of %s after ForgetSubject = %+v, %v; want the placeholder", kept, snap, err)
	}
	// A deleted stream takes no new snapshot: the soft-deleted one keeps
	// its last (a repository seals it under the stream's key, which
	// ForgetSubject destroyed).
	if snap, err := w.view.LoadSnapshot(ctx(t), soft); err != nil || snap.Schema != "m" && snap.Schema != lifecycle.ForgottenSchema {
		t.Errorf("snapshot of the soft-deleted %s after ForgetSubject = %+v, %v; want it kept", soft, snap, err)
	}
	f := runtime.ForgottenString
	if got := emails(t, w.view); !slices.Equal(got, []string{f, f}) {
		t.Errorf("emails after forgetting = %q; want two placeholders (soft-deleted and kept streams)", got)
	}
	if again := lcForget(t, w.view, "alice"); again.Found {
		t.Errorf("second ForgetSubject = %+v; want nothing found", again)
	}
	w.check(t,
		lcStream{st: hard, versions: []uint64{2}, mode: runtime.HardDelete, tomb: 2},
		lcStream{st: soft, versions: versions(1, 2), mode: runtime.SoftDelete, tomb: 2},
		lcStream{st: kept, versions: []uint64{1}})
}

// lcRace: appenders, a deleter and a truncater on one store. Afterwards
// the log reads in order, Stats agrees with it and Verify finds nothing.
func lcRace(t *testing.T, w *lcWorld) {
	const writers, rounds = 3, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				st := stream("R", fmt.Sprintf("%d-%d", g, i%5))
				_, err := w.view.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(2)})
				if err != nil && !errors.Is(err, runtime.ErrStreamDeleted) {
					errs <- fmt.Errorf("append to %s: %w", st, err)
					return
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range rounds {
			st := stream("R", fmt.Sprintf("%d-%d", i%writers, i%5))
			mode := runtime.SoftDelete
			if i%2 == 1 {
				mode = runtime.HardDelete
			}
			_, err := lifecycle.DeleteStream(ctx(t), w.view, st, mode)
			if err != nil && !errors.Is(err, runtime.ErrNotFound) {
				errs <- fmt.Errorf("%s delete of %s: %w", mode, st, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		ret := lcRetention(t, w.store)
		for range rounds {
			h, err := w.store.Head(ctx(t))
			if err != nil {
				errs <- err
				return
			}
			if h > 1 {
				if _, err := ret.TruncateLog(ctx(t), h-1); err != nil {
					errs <- fmt.Errorf("TruncateLog(%d): %w", h-1, err)
					return
				}
			}
			for _, err := range w.store.ReadAll(ctx(t), 0) {
				if err != nil {
					if !errors.Is(err, runtime.ErrTruncated) {
						errs <- fmt.Errorf("ReadAll: %w", err)
						return
					}
					break
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	w.check(t)
}
