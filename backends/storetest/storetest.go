// Package storetest is the conformance suite for runtime.Store
// implementations, in the spirit of testing/fstest.TestFS: one call, Run,
// checks a store against the whole contract documented on runtime.Store.
//
// A backend's tests call it with a Factory:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{
//			Open: func(t *testing.T) runtime.Store { return memory.New() },
//		})
//	}
//
// Every rule is a subtest with a stable name such as
// "Append/ExpectedVersion/NoStream", so a backend can run one rule with
// go test -run 'TestConformance/Append/ExpectedVersion'. Stores that
// persist set Factory.Reopen to add the "Reopen/..." subtests, which check
// that everything survives closing and opening the store again.
//
// Where the runtime.Store doc leaves room, the suite checks this reading:
//   - Saving a snapshot older than the stored one returns nil and keeps the
//     newer one; saving one at the same version is not checked.
//   - Reads naming an invalid stream (ReadStream, StreamVersion,
//     LoadSnapshot) and loads of an empty checkpoint name or idempotency key
//     fail with ErrInvalid, like the writes.
//   - An iterator given a cancelled context or used on a closed store
//     yields the error before any record.
//   - Stats.Snapshots counts streams that have a snapshot;
//     Stats.IdempotencyKeys counts keys from Append and SaveIdempotency.
//   - A zero event Time is stamped within a second of the Append call.
//   - An event appended with a zero EventData.ID gets a new id
//     (runtime.NewEventID), distinct from every other; a non-zero one is
//     kept as given. Both read back unchanged, after a reopen too.
//
// The suite uses no wall-clock limits: a store that deadlocks is caught by
// go test's -timeout, a store that is slow only makes the suite slow.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Factory makes stores for the suite.
type Factory struct {
	// Open returns a new, empty store for one test; the suite closes it
	// (Close may then be called again by cleanup: tolerate ErrClosed).
	Open func(t *testing.T) runtime.Store
	// Reopen, when non-nil, closes s and opens the same underlying store
	// again (persistence tests). Nil for in-memory stores.
	Reopen func(t *testing.T, s runtime.Store) runtime.Store
}

// Run checks the store made by f against the runtime.Store contract, each
// rule in its own subtest of t.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	h := &harness{f: f}
	t.Run("Append", h.testAppend)
	t.Run("Keys", h.testKeys)
	t.Run("BadInput", h.testBadInput)
	t.Run("Security", h.testSecurity)
	t.Run("Snapshots", h.testSnapshots)
	t.Run("Checkpoints", h.testCheckpoints)
	t.Run("Idempotency", h.testIdempotency)
	t.Run("EventIDs", h.testEventIDs)
	t.Run("Wait", h.testWait)
	t.Run("Stats", h.testStats)
	t.Run("Concurrency", h.testConcurrency)
	t.Run("Closed", h.testClosed)
	t.Run("Context", h.testContext)
	t.Run("Reopen", h.testReopen)
	t.Run("Tenants", h.testTenants)
	t.Run("Shredding", h.testShredding)
	t.Run("Delete", h.testDelete)
	t.Run("Visit", h.testVisit)
}

type harness struct {
	f Factory
}

// open returns a fresh store that is closed when t ends.
func (h *harness) open(t *testing.T) runtime.Store {
	t.Helper()
	s := h.f.Open(t)
	if s == nil {
		t.Fatal("storetest: Factory.Open returned nil")
	}
	cs := &closer{s: s}
	t.Cleanup(func() { cs.close(t) })
	return s
}

// closer closes a store once, tolerating stores the test closed itself.
type closer struct {
	s runtime.Store
}

func (c *closer) close(t *testing.T) {
	if err := c.s.Close(); err != nil && !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// Events returns n distinct events named "Event<i>" with small, distinct
// Data and one metadata entry, for use in tests of stores and runtime code.
// Their Time is zero, so the store stamps it.
func Events(n int) []runtime.EventData {
	return EventsWith("Event", n)
}

// EventsWith is like Events with the given name prefix, so that events of
// different calls can be told apart.
func EventsWith(prefix string, n int) []runtime.EventData {
	out := make([]runtime.EventData, n)
	for i := range out {
		out[i] = runtime.EventData{
			Name:     fmt.Sprintf("%s%d", prefix, i),
			Schema:   1,
			Metadata: map[string]string{"i": fmt.Sprint(i), "prefix": prefix},
			Data:     fmt.Appendf(nil, `{"prefix":%q,"i":%d}`, prefix, i),
		}
	}
	return out
}

// Collect drains a ReadStream or ReadAll sequence, returning its records
// and the first error (after which the sequence is not resumed).
func Collect(seq func(func(runtime.Record, error) bool)) ([]runtime.Record, error) {
	var out []runtime.Record
	for r, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	return t.Context()
}

func stream(typ, id string) runtime.StreamID {
	return runtime.StreamID{Type: typ, ID: id}
}

func mustAppend(t *testing.T, s runtime.Store, st runtime.StreamID, expected uint64, events ...runtime.EventData) runtime.AppendResult {
	t.Helper()
	res, err := s.Append(ctx(t), runtime.AppendRequest{Stream: st, Expected: expected, Events: events})
	if err != nil {
		t.Fatalf("Append(%s, expected %d, %d events): %v", st, expected, len(events), err)
	}
	return res
}

func readStream(t *testing.T, s runtime.Store, st runtime.StreamID, after uint64) []runtime.Record {
	t.Helper()
	recs, err := Collect(s.ReadStream(ctx(t), st, after))
	if err != nil {
		t.Fatalf("ReadStream(%s, after %d): %v", st, after, err)
	}
	return recs
}

func readAll(t *testing.T, s runtime.Store, after uint64) []runtime.Record {
	t.Helper()
	recs, err := Collect(s.ReadAll(ctx(t), after))
	if err != nil {
		t.Fatalf("ReadAll(after %d): %v", after, err)
	}
	return recs
}

func version(t *testing.T, s runtime.Store, st runtime.StreamID) uint64 {
	t.Helper()
	v, err := s.StreamVersion(ctx(t), st)
	if err != nil {
		t.Fatalf("StreamVersion(%s): %v", st, err)
	}
	return v
}

func head(t *testing.T, s runtime.Store) uint64 {
	t.Helper()
	p, err := s.Head(ctx(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return p
}

func stats(t *testing.T, s runtime.Store) runtime.Stats {
	t.Helper()
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// state is what a failed write must leave unchanged.
type state struct {
	head    uint64
	version uint64
	all     []runtime.Record
	stats   runtime.Stats
}

func capture(t *testing.T, s runtime.Store, st runtime.StreamID) state {
	t.Helper()
	return state{
		head:    head(t, s),
		version: version(t, s, st),
		all:     readAll(t, s, 0),
		stats:   stats(t, s),
	}
}

// unchanged fails t if the store's observable state differs from before.
func unchanged(t *testing.T, s runtime.Store, st runtime.StreamID, before state) {
	t.Helper()
	after := capture(t, s, st)
	if after.head != before.head {
		t.Errorf("Head changed from %d to %d after a failed write", before.head, after.head)
	}
	if after.version != before.version {
		t.Errorf("StreamVersion(%s) changed from %d to %d after a failed write", st, before.version, after.version)
	}
	if len(after.all) != len(before.all) {
		t.Errorf("ReadAll has %d events after a failed write, %d before", len(after.all), len(before.all))
	} else {
		for i := range after.all {
			if msg := diffRecord(before.all[i], after.all[i]); msg != "" {
				t.Errorf("ReadAll record %d changed after a failed write: %s", i, msg)
			}
		}
	}
	b, a := before.stats, after.stats
	if a.Events != b.Events || a.Streams != b.Streams || a.Snapshots != b.Snapshots ||
		a.Checkpoints != b.Checkpoints || a.IdempotencyKeys != b.IdempotencyKeys || a.Head != b.Head {
		t.Errorf("Stats changed after a failed write:\nbefore %+v\nafter  %+v", b, a)
	}
}

// diffRecord describes how two records differ, "" when equal.
func diffRecord(want, got runtime.Record) string {
	switch {
	case got.Stream != want.Stream:
		return fmt.Sprintf("stream %s, want %s", got.Stream, want.Stream)
	case got.EventID != want.EventID:
		return fmt.Sprintf("%s v%d event id %s, want %s", want.Stream, want.Version, got.EventID, want.EventID)
	case got.Version != want.Version:
		return fmt.Sprintf("%s version %d, want %d", want.Stream, got.Version, want.Version)
	case got.Position != want.Position:
		return fmt.Sprintf("%s v%d position %d, want %d", want.Stream, want.Version, got.Position, want.Position)
	case got.Name != want.Name:
		return fmt.Sprintf("%s v%d name %q, want %q", want.Stream, want.Version, got.Name, want.Name)
	case got.Schema != want.Schema:
		return fmt.Sprintf("%s v%d schema %d, want %d", want.Stream, want.Version, got.Schema, want.Schema)
	case !got.Time.Equal(want.Time):
		return fmt.Sprintf("%s v%d time %v, want %v", want.Stream, want.Version, got.Time, want.Time)
	case !metaEqual(got.Metadata, want.Metadata):
		return fmt.Sprintf("%s v%d metadata %v, want %v", want.Stream, want.Version, got.Metadata, want.Metadata)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("%s v%d data %q, want %q", want.Stream, want.Version, trunc(got.Data), trunc(want.Data))
	}
	return ""
}

// metaEqual treats nil and empty metadata as equal.
func metaEqual(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// checkEvents checks that recs are exactly events appended to st, with
// versions starting at firstVersion.
func checkEvents(t *testing.T, recs []runtime.Record, st runtime.StreamID, firstVersion uint64, events []runtime.EventData) {
	t.Helper()
	if len(recs) != len(events) {
		t.Fatalf("got %d records of %s, want %d", len(recs), st, len(events))
	}
	for i, r := range recs {
		e := events[i]
		want := runtime.Record{
			EventID: e.ID, Stream: st, Version: firstVersion + uint64(i), Position: r.Position,
			Name: e.Name, Schema: e.Schema, Time: r.Time, Metadata: e.Metadata, Data: e.Data,
		}
		if e.ID.IsZero() {
			// The store made the id: any non-zero one.
			want.EventID = r.EventID
			if r.EventID.IsZero() {
				t.Errorf("record %d: zero event id; a store makes one for an event appended without", i)
			}
		}
		if msg := diffRecord(want, r); msg != "" {
			t.Errorf("record %d: %s", i, msg)
		}
		if !e.Time.IsZero() && !r.Time.Equal(e.Time) {
			t.Errorf("record %d: time %v, want %v", i, r.Time, e.Time)
		}
	}
}

// checkPositions checks that recs have strictly increasing positions.
func checkPositions(t *testing.T, recs []runtime.Record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if recs[i].Position <= recs[i-1].Position {
			t.Fatalf("record %d has position %d after position %d", i, recs[i].Position, recs[i-1].Position)
		}
	}
}

// wantErr fails t unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

// wantConflict fails t unless err is a *ConflictError with these fields.
func wantConflict(t *testing.T, what string, err error, st runtime.StreamID, expected, actual uint64) {
	t.Helper()
	var ce *runtime.ConflictError
	if !errors.As(err, &ce) {
		t.Errorf("%s: got error %v, want a *runtime.ConflictError", what, err)
		return
	}
	if !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("%s: errors.Is(%v, ErrConflict) is false", what, err)
	}
	if ce.Stream != st || ce.Expected != expected || ce.Actual != actual {
		t.Errorf("%s: got %+v, want stream %s, expected %d, actual %d", what, *ce, st, expected, actual)
	}
}

// fixedTime is a time with nanoseconds in a zone other than UTC.
var fixedTime = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("X", 5*3600+30*60))
