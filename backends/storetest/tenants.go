package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// tenantNames are tenant names built to collide under naive scoping: the
// colliding names of the key tests, names that look like scoped prefixes,
// and prefixes of one another.
func tenantNames() []string {
	return append(append([]string{}, collidingNames...), "@1:a", "1:a", "a/b/c", "@", strings.Repeat("t", tenant.MaxNameLength))
}

func (h *harness) testTenants(t *testing.T) {
	t.Run("Isolation", h.tenantIsolation)
	t.Run("Errors", h.tenantErrors)
	t.Run("Wait", h.tenantWait)
	t.Run("All", h.tenantAll)
	t.Run("Limits", h.tenantLimits)
}

// tenantData is what tenantIsolation writes in each tenant.
type tenantData struct {
	view *tenant.Store
	res  runtime.AppendResult
}

// populateTenants writes, in every tenant of tenantNames and outside any
// tenant, an event to stream acct/"x" under idempotency key "k", a snapshot
// and a checkpoint "p", each holding the tenant's name.
func populateTenants(t *testing.T, s runtime.Store) (map[string]tenantData, runtime.AppendResult) {
	t.Helper()
	st := stream("acct", "x")
	out := make(map[string]tenantData)
	write := func(view runtime.Store, name string, i int) runtime.AppendResult {
		e := runtime.EventData{Name: "Opened", Schema: 1, Data: []byte(name)}
		res, err := view.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{e}, IdempotencyKey: "k"})
		if err != nil {
			t.Fatalf("tenant %q: Append: %v", name, err)
		}
		if err := view.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: st, Version: 1, Schema: "s", Data: []byte(name)}); err != nil {
			t.Fatalf("tenant %q: SaveSnapshot: %v", name, err)
		}
		if err := view.SaveCheckpoint(ctx(t), "p", uint64(i+1)); err != nil {
			t.Fatalf("tenant %q: SaveCheckpoint: %v", name, err)
		}
		return res
	}
	raw := write(s, "", 0)
	for i, name := range tenantNames() {
		view, err := tenant.Scope(s, name)
		if err != nil {
			t.Fatalf("Scope(%q): %v", name, err)
		}
		out[name] = tenantData{view: view, res: write(view, name, i+1)}
	}
	return out, raw
}

// tenantIsolation checks that each tenant sees its own stream, log,
// snapshot, checkpoint and idempotency key, and nothing of any other
// tenant's or of the data written outside tenants.
func (h *harness) tenantIsolation(t *testing.T) {
	s := h.open(t)
	views, raw := populateTenants(t, s)
	st := stream("acct", "x")
	for i, name := range tenantNames() {
		v := views[name]
		if got := version(t, v.view, st); got != 1 {
			t.Errorf("tenant %q: version %d, want 1", name, got)
		}
		recs := readStream(t, v.view, st, 0)
		if len(recs) != 1 || string(recs[0].Data) != name || recs[0].Stream != st || recs[0].Position != v.res.LastPosition {
			t.Errorf("tenant %q: ReadStream = %+v, want one record of %s at position %d holding the name", name, recs, st, v.res.LastPosition)
		}
		all := readAll(t, v.view, 0)
		if len(all) != 1 || string(all[0].Data) != name || all[0].Stream != st {
			t.Errorf("tenant %q: ReadAll = %d records %+v, want its one record", name, len(all), all)
		}
		if got := head(t, v.view); got != v.res.LastPosition {
			t.Errorf("tenant %q: Head %d, want its last position %d", name, got, v.res.LastPosition)
		}
		snap, err := v.view.LoadSnapshot(ctx(t), st)
		if err != nil || string(snap.Data) != name || snap.Stream != st {
			t.Errorf("tenant %q: LoadSnapshot = %+v, %v; want its own", name, snap, err)
		}
		cp, err := v.view.LoadCheckpoint(ctx(t), "p")
		if err != nil || cp != uint64(i+2) {
			t.Errorf("tenant %q: LoadCheckpoint = %d, %v; want %d", name, cp, err, i+2)
		}
		rec, err := v.view.LoadIdempotency(ctx(t), "k")
		if err != nil || rec.Key != "k" || rec.Stream != st || rec.Position != v.res.LastPosition {
			t.Errorf("tenant %q: LoadIdempotency = %+v, %v; want key k on %s at position %d", name, rec, err, st, v.res.LastPosition)
		}
		if _, err := v.view.LoadCheckpoint(ctx(t), "other"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("tenant %q: LoadCheckpoint of a name only other tenants lack: %v, want ErrNotFound", name, err)
		}
	}
	// Outside tenants, the store keeps its own data and shows the tenants'
	// under scoped names only.
	if recs := readStream(t, s, st, 0); len(recs) != 1 || len(recs[0].Data) != 0 || recs[0].Position != raw.LastPosition {
		t.Errorf("store: ReadStream(%s) = %+v, want only the record written outside tenants", st, recs)
	}
	if cp, err := s.LoadCheckpoint(ctx(t), "p"); err != nil || cp != 1 {
		t.Errorf("store: LoadCheckpoint(p) = %d, %v; want 1", cp, err)
	}
	all := readAll(t, s, 0)
	if len(all) != len(tenantNames())+1 {
		t.Errorf("store: ReadAll has %d records, want %d", len(all), len(tenantNames())+1)
	}
	checkPositions(t, all)
}

// tenantErrors checks that conflicts and duplicate keys name the stream and
// key as the tenant does, and that a second tenant's first append to the
// same stream id is no conflict.
func (h *harness) tenantErrors(t *testing.T) {
	s := h.open(t)
	a, _ := tenant.Scope(s, "a")
	b, _ := tenant.Scope(s, "a/b")
	st := stream("acct", "x")
	first := mustAppend(t, a, st, runtime.NoStream, Events(2)...)
	_, err := a.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: Events(1)})
	wantConflict(t, "tenant a: second NoStream append", err, st, runtime.NoStream, 2)
	mustAppend(t, b, st, runtime.NoStream, Events(1)...)
	if _, err := a.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: 2, Events: Events(1), IdempotencyKey: "k"}); err != nil {
		t.Fatalf("tenant a: keyed append: %v", err)
	}
	_, err = a.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: Events(1), IdempotencyKey: "k"})
	var de *runtime.DuplicateError
	if !errors.As(err, &de) || de.Existing.Key != "k" || de.Existing.Stream != st || de.Existing.Version != 3 {
		t.Errorf("tenant a: repeated key: %v (%+v), want a DuplicateError for key k on %s at version 3", err, de, st)
	}
	if _, err := b.LoadIdempotency(ctx(t), "k"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("tenant a/b: LoadIdempotency(k) recorded by tenant a: %v, want ErrNotFound", err)
	}
	if err := b.SaveIdempotency(ctx(t), runtime.IdempotencyRecord{Key: "k", Stream: st, Version: 1}); err != nil {
		t.Errorf("tenant a/b: SaveIdempotency(k), a key only tenant a holds: %v", err)
	}
	if got := version(t, a, st); got != 3 || first.FirstVersion != 1 {
		t.Errorf("tenant a: version %d after the refused appends, want 3", got)
	}
}

// tenantWait checks that a tenant's Wait wakes for the tenant's own appends
// only, and returns the tenant's head.
func (h *harness) tenantWait(t *testing.T) {
	s := h.open(t)
	a, _ := tenant.Scope(s, "a")
	b, _ := tenant.Scope(s, "b")
	mustAppend(t, a, stream("acct", "1"), runtime.NoStream, Events(1)...)
	after := head(t, a)
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	got := make(chan uint64, 1)
	errc := make(chan error, 1)
	go func() {
		p, err := a.Wait(wctx, after)
		got <- p
		errc <- err
	}()
	mustAppend(t, b, stream("acct", "1"), runtime.NoStream, Events(3)...)
	res := mustAppend(t, a, stream("acct", "2"), runtime.NoStream, Events(1)...)
	// A store that loses the tenant's records would leave Wait blocked:
	// check what it should find first.
	if h := head(t, a); h != res.LastPosition {
		cancel()
		t.Fatalf("tenant a: Head %d after its append at %d", h, res.LastPosition)
	}
	if p, err := <-got, <-errc; err != nil || p != res.LastPosition {
		t.Errorf("tenant a: Wait(after %d) = %d, %v; want a's new position %d (b's appends must not wake it)", after, p, err, res.LastPosition)
	}
	if recs := readAll(t, a, 0); len(recs) != 2 || recs[1].Position != res.LastPosition {
		t.Fatalf("tenant a: ReadAll = %+v, want its two records", recs)
	}
	var seen []uint64
	for rec, err := range runtime.Subscribe(ctx(t), a, 0) {
		if err != nil {
			t.Fatalf("tenant a: Subscribe: %v", err)
		}
		seen = append(seen, rec.Position)
		if rec.Position == res.LastPosition {
			break
		}
	}
	if len(seen) != 2 {
		t.Errorf("tenant a: Subscribe delivered positions %v, want a's two", seen)
	}
	// Closing a view ends its waits and leaves the store open.
	beyond := head(t, s) + 100
	done := make(chan error, 1)
	go func() {
		_, err := b.Wait(ctx(t), beyond)
		done <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatalf("tenant b: Close: %v", err)
	}
	wantErr(t, "tenant b: Wait across Close", <-done, runtime.ErrClosed)
	wantErr(t, "tenant b: second Close", b.Close(), runtime.ErrClosed)
	_, err := b.StreamVersion(ctx(t), stream("acct", "1"))
	wantErr(t, "tenant b: StreamVersion after Close", err, runtime.ErrClosed)
	if v := version(t, a, stream("acct", "1")); v != 1 {
		t.Errorf("tenant a after b's Close: version %d, want 1", v)
	}
}

// tenantAll checks the read-only view across tenants.
func (h *harness) tenantAll(t *testing.T) {
	s := h.open(t)
	views, _ := populateTenants(t, s)
	all := tenant.All(s)
	recs := readAll(t, all, 0)
	if len(recs) != len(views)+1 {
		t.Fatalf("All: ReadAll has %d records, want %d", len(recs), len(views)+1)
	}
	checkPositions(t, recs)
	for _, rec := range recs {
		name, ok := rec.Metadata[tenant.MetadataKey]
		if rec.Stream != stream("acct", "x") || string(rec.Data) != name || ok != (name != "") {
			t.Errorf("All: record at %d: stream %s, tenant %q (%v), data %q; want acct/\"x\" with its tenant's name",
				rec.Position, rec.Stream, name, ok, rec.Data)
		}
	}
	_, err := all.Append(ctx(t), runtime.AppendRequest{Stream: stream("acct", "y"), Expected: runtime.AnyVersion, Events: Events(1)})
	wantErr(t, "All: Append", err, runtime.ErrInvalid)
	if got, want := head(t, all), head(t, s); got != want {
		t.Errorf("All: Head %d, want the store's %d", got, want)
	}
}

// tenantLimits checks that scoped names stay within the store's limits and
// that refused input writes nothing.
func (h *harness) tenantLimits(t *testing.T) {
	s := h.open(t)
	if _, err := tenant.Scope(s, ""); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Scope with an empty name: %v, want ErrInvalid", err)
	}
	if _, err := tenant.Scope(s, strings.Repeat("t", tenant.MaxNameLength+1)); !errors.Is(err, runtime.ErrTooLarge) {
		t.Errorf("Scope with a long name: %v, want ErrTooLarge", err)
	}
	a, _ := tenant.Scope(s, "acme")
	long := stream(strings.Repeat("t", runtime.MaxTypeLength), "1")
	_, err := a.Append(ctx(t), runtime.AppendRequest{Stream: long, Expected: runtime.AnyVersion, Events: Events(1)})
	wantErr(t, "tenant: Append to a type at the store's limit", err, runtime.ErrTooLarge)
	err = a.SaveCheckpoint(ctx(t), strings.Repeat("c", runtime.MaxIDLength), 1)
	wantErr(t, "tenant: checkpoint name at the store's limit", err, runtime.ErrTooLarge)
	md := runtime.EventData{Name: "E", Metadata: map[string]string{tenant.MetadataKey: "other"}}
	_, err = a.Append(ctx(t), runtime.AppendRequest{Stream: stream("acct", "1"), Expected: runtime.AnyVersion, Events: []runtime.EventData{md}})
	wantErr(t, "tenant: Append with the reserved metadata key", err, runtime.ErrInvalid)
	if got := head(t, s); got != 0 {
		t.Errorf("store head %d after refused tenant appends, want 0", got)
	}
}
