package storetest

import (
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// testEventIDs checks that every stored event has an id: made by the store
// when the caller gave none, kept when it gave one, distinct, and the same
// in every read, after a reopen too.
func (h *harness) testEventIDs(t *testing.T) {
	s := h.open(t)
	given := runtime.NewEventID()
	a, b := stream("T", "ids-a"), stream("T", "ids-b")
	evs := Events(3)
	evs[1].ID = given
	mustAppend(t, s, a, runtime.NoStream, evs...)
	mustAppend(t, s, b, runtime.NoStream, Events(2)...)
	mustAppend(t, s, a, 3, Events(1)...)
	check := func(t *testing.T, s runtime.Store) {
		t.Helper()
		all := readAll(t, s, 0)
		if len(all) != 6 {
			t.Fatalf("ReadAll: %d records, want 6", len(all))
		}
		seen := make(map[runtime.EventID]uint64, len(all))
		for _, r := range all {
			if r.EventID.IsZero() {
				t.Errorf("%s v%d: zero event id", r.Stream, r.Version)
			}
			if p, dup := seen[r.EventID]; dup {
				t.Errorf("%s v%d at position %d: event id %s already at position %d", r.Stream, r.Version, r.Position, r.EventID, p)
			}
			seen[r.EventID] = r.Position
		}
		if got := all[1].EventID; got != given {
			t.Errorf("event appended with id %s read back as %s", given, got)
		}
		byStream := append(readStream(t, s, a, 0), readStream(t, s, b, 0)...)
		for _, r := range byStream {
			if want := all[r.Position-1]; r.EventID != want.EventID {
				t.Errorf("%s v%d: ReadStream id %s, ReadAll id %s", r.Stream, r.Version, r.EventID, want.EventID)
			}
		}
	}
	check(t, s)
	if h.f.Reopen != nil {
		check(t, h.reopen(t, s))
	}
}
