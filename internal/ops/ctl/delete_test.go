package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

func decodeDelete(t *testing.T, r result) deleteJSON {
	t.Helper()
	var out deleteJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("delete printed %q: %v (stderr %q)", r.stdout, err, r.stderr)
	}
	return out
}

// TestDelete runs delete on both backends: a dry run by default, soft and
// hard deletes with -yes, what events, stats and verify show afterwards.
func TestDelete(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := filled(t, mk(t))
		t.Run(b.name, func(t *testing.T) {
			eventsOf := func(typ, id string) []eventJSON {
				t.Helper()
				r := b.run(t, "events", typ, id)
				if r.code != ExitOK {
					t.Fatalf("events %s %s: exit %d: %s", typ, id, r.code, r.stderr)
				}
				var out []eventJSON
				for line := range strings.Lines(r.stdout) {
					var e eventJSON
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatal(err)
					}
					out = append(out, e)
				}
				return out
			}
			// A dry run, by default and with -dry-run even with -yes.
			for _, args := range [][]string{{"delete", "-stream", "account/a1", "-hard"}, {"delete", "-stream", "account/a1", "-hard", "-yes", "-dry-run"}} {
				r := b.run(t, args...)
				plan := decodeDelete(t, r)
				if r.code != ExitOK || !plan.DryRun || plan.Events != 4 || !plan.Snapshot || plan.Mode != "hard" || plan.Tombstone.Version != 5 {
					t.Errorf("%v: exit %d, %+v", args, r.code, plan)
				}
				if !strings.Contains(r.stderr, "dry run: would hard-delete") || !strings.Contains(r.stderr, "-yes") {
					t.Errorf("%v: stderr %q does not say it is a dry run", args, r.stderr)
				}
			}
			if evs := eventsOf("account", "a1"); len(evs) != 4 {
				t.Fatalf("after dry runs, account/a1 has %d events, want 4", len(evs))
			}

			// A soft delete keeps the events and appends the tombstone.
			r := b.run(t, "delete", "-stream", "invoice/i1", "-yes")
			soft := decodeDelete(t, r)
			if r.code != ExitOK || soft.DryRun || soft.Events != 1 || soft.Tombstone == nil || soft.Tombstone.Position != 7 {
				t.Fatalf("soft delete: exit %d, %+v, stderr %q", r.code, soft, r.stderr)
			}
			evs := eventsOf("invoice", "i1")
			if len(evs) != 2 || evs[1].Name != runtime.TombstoneEvent || !strings.Contains(string(evs[1].Data), `"mode":"soft"`) {
				t.Errorf("events of the soft-deleted stream = %+v; want its event and the tombstone", evs)
			}
			if r := b.run(t, "delete", "-stream", "invoice/i1", "-yes"); r.code != ExitOK || !decodeDelete(t, r).Already || !strings.Contains(r.stderr, "already") {
				t.Errorf("repeated soft delete: exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}

			// A hard delete removes the events, the snapshot and the index.
			r = b.run(t, "delete", "-stream", "account/a1", "-hard", "-yes")
			hard := decodeDelete(t, r)
			if r.code != ExitOK || hard.DryRun || hard.Events != 4 || !hard.Snapshot || hard.Tombstone.Removed != 4 || hard.Tombstone.Position != 8 {
				t.Fatalf("hard delete: exit %d, %+v, stderr %q", r.code, hard, r.stderr)
			}
			if evs := eventsOf("account", "a1"); len(evs) != 1 || evs[0].Name != runtime.TombstoneEvent || evs[0].Version != 5 {
				t.Errorf("events of the hard-deleted stream = %+v; want the tombstone only", evs)
			}
			if r := b.run(t, "verify"); r.code != ExitOK {
				t.Errorf("verify after deletes: exit %d: %s%s", r.code, r.stdout, r.stderr)
			}
			r = b.run(t, "tail", "-from-start", "-limit", "3")
			if r.code != ExitOK || strings.Contains(r.stdout, `"a1"`) {
				t.Errorf("the log after the hard delete still shows account/a1's events: %s", r.stdout)
			}

			if r := b.run(t, "delete", "-stream", "account/zz", "-yes"); r.code != ExitFailed || !strings.Contains(r.stderr, "no records") {
				t.Errorf("delete of a missing stream: exit %d, %q", r.code, r.stderr)
			}
			// A store with deletions exports (holes and all), but the export is not
			// replayed into a new store: import keeps positions and versions.
			exp := b.run(t, "export")
			if exp.code != ExitOK || !strings.Contains(exp.stdout, runtime.TombstoneEvent) {
				t.Fatalf("export: exit %d, %q", exp.code, exp.stderr)
			}
			fresh := pebbleBackend(t)
			r = runCtl(context.Background(), append(fresh.flags, "import"), exp.stdout, false)
			if r.code != ExitFailed {
				t.Errorf("import of an export with tombstones and holes: exit %d, %q; want a refusal", r.code, r.stderr)
			}
		})
	}
}

// TestDeleteTenant deletes a tenant's stream: the same stream of another
// tenant stays.
func TestDeleteTenant(t *testing.T) {
	b := pebbleBackend(t)
	s := b.open(t)
	st := runtime.StreamID{Type: "account", ID: "x"}
	for _, name := range []string{"acme", "globex"} {
		view, err := tenant.Scope(s, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := view.Append(context.Background(), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream,
			Events: []runtime.EventData{{Name: "opened", Data: mp(t, opened{Owner: name})}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := b.run(t, "delete", "-tenant", "acme", "-type", "account", "-id", "x", "-hard", "-yes")
	if out := decodeDelete(t, r); r.code != ExitOK || out.Tenant != "acme" || out.Events != 1 {
		t.Fatalf("tenant delete: exit %d, %+v, %q", r.code, out, r.stderr)
	}
	s = b.open(t)
	defer s.Close()
	for name, deleted := range map[string]bool{"acme": true, "globex": false} {
		view, _ := tenant.Scope(s, name)
		_, err := lifecycle.StreamTombstone(context.Background(), view, st)
		if got := err == nil; got != deleted || (!deleted && !errors.Is(err, runtime.ErrNotFound)) {
			t.Errorf("tenant %s: deleted %v (%v), want %v", name, got, err, deleted)
		}
	}
}

func TestDeleteUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"delete"}, "name the stream"},
		{[]string{"delete", "-stream", "noslash"}, "want TYPE/ID"},
		{[]string{"delete", "-stream", "a/b", "-type", "a"}, "not both"},
		{[]string{"delete", "-stream", "/b"}, "empty stream type"},
		{[]string{"delete", "-stream", "a/b", "extra"}, "takes no arguments"},
	} {
		r := runCtl(context.Background(), append([]string{"-pebble", dir}, tt.args...), "", false)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, %q; want a usage error mentioning %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}
