package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Clock is the time source of saga deadlines and Actions.Now.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed on this
	// clock (at once when d ≤ 0).
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock returns the clock of the operating system.
func SystemClock() Clock { return systemClock{} }

// ManualClock is a Clock that only moves when told to, for tests: deadlines
// fire when Advance or Set moves it past them, never by waiting. It is safe
// for concurrent use.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock has been moved d
// past its current time.
func (c *ManualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and wakes the waiters that are due.
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and wakes the waiters that
// are due.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// Waiters returns how many After channels are still waiting: a test can
// wait for a runner to be idle before it moves the clock.
func (c *ManualClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// deadlineIndex is the persisted index of a saga's deadlines: the stream
// (DeadlinesPrefix + name, "index"), one record per deadline set,
// appended before the reaction that sets it (so the index holds at least
// every pending deadline), compacted into the stream's snapshot. An entry
// is dropped once its deadline fired or turned out stale (cancelled, re-set
// or the instance ended); that is checked against the instance, which is
// the truth.
type deadlineIndex struct {
	store   runtime.Store
	stream  runtime.StreamID
	mu      sync.Mutex
	entries map[indexKey]indexRec
	version uint64 // index stream version read so far
	dropped int    // entries dropped since the last snapshot
	wake    chan struct{}
}

type indexKey struct {
	instance, name string
	at             int64
}

func keyOf(x indexRec) indexKey { return indexKey{x.Instance, x.Name, x.At.UnixNano()} }

// deadlineSnapshotSchema identifies the encoding of index snapshots.
const deadlineSnapshotSchema = "cqrsgen.saga.deadlines/1"

// deadlineSnapshotEvery is how many dropped entries trigger a snapshot.
const deadlineSnapshotEvery = 64

func newDeadlineIndex(store runtime.Store, saga string) *deadlineIndex {
	return &deadlineIndex{store: store, stream: runtime.StreamID{Type: DeadlinesPrefix + saga, ID: "index"},
		entries: map[indexKey]indexRec{}, wake: make(chan struct{}, 1)}
}

// add records deadlines set by the reaction that will be version version
// of instance id, and wakes the loop.
func (x *deadlineIndex) add(ctx context.Context, id string, version uint64, set []Deadline) error {
	if len(set) == 0 {
		return nil
	}
	events := make([]runtime.EventData, len(set))
	for i, d := range set {
		events[i] = runtime.EventData{Name: sagaDeadlineIndexed, Schema: 1,
			Data: encodeIndex(indexRec{Instance: id, Name: d.Name, At: d.At, Version: version})}
	}
	if _, err := x.store.Append(ctx, runtime.AppendRequest{Stream: x.stream, Expected: runtime.AnyVersion, Events: events}); err != nil {
		return fmt.Errorf("indexing deadlines: %w", err)
	}
	select {
	case x.wake <- struct{}{}:
	default:
	}
	return nil
}

// load reads the snapshot and the index records after it.
func (x *deadlineIndex) load(ctx context.Context) error {
	snap, err := x.store.LoadSnapshot(ctx, x.stream)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
	case err != nil:
		return fmt.Errorf("loading the deadline index: %w", err)
	case snap.Schema == deadlineSnapshotSchema:
		set, err := decodeIndexSet(snap.Data)
		if err != nil {
			return &runtime.DecodeError{Stream: x.stream, Version: snap.Version, What: "snapshot", Err: err}
		}
		x.mu.Lock()
		for _, e := range set {
			x.entries[keyOf(e)] = e
		}
		x.version = snap.Version
		x.mu.Unlock()
	}
	return x.tail(ctx)
}

// tail reads the index records appended since the last read.
func (x *deadlineIndex) tail(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for rec, err := range x.store.ReadStream(ctx, x.stream, x.version) {
		if err != nil {
			return fmt.Errorf("reading the deadline index: %w", err)
		}
		e, err := decodeIndex(rec.Data)
		if err != nil {
			return &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "deadline index entry", Err: err}
		}
		x.entries[keyOf(e)] = e
		x.version = rec.Version
	}
	return nil
}

// due returns the entries due at now, earliest first, and the earliest
// time of the others (zero if none).
func (x *deadlineIndex) due(now time.Time) ([]indexRec, time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var due []indexRec
	var next time.Time
	for _, e := range x.entries {
		if !e.At.After(now) {
			due = append(due, e)
		} else if next.IsZero() || e.At.Before(next) {
			next = e.At
		}
	}
	slices.SortFunc(due, func(a, b indexRec) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.Instance != b.Instance {
			return map[bool]int{true: -1, false: 1}[a.Instance < b.Instance]
		}
		return map[bool]int{true: -1, false: 1}[a.Name < b.Name]
	})
	return due, next
}

func (x *deadlineIndex) drop(e indexRec) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.entries[keyOf(e)]; ok {
		delete(x.entries, keyOf(e))
		x.dropped++
	}
}

// compact saves the index as the stream's snapshot when enough entries
// were dropped (or force is set and any were).
func (x *deadlineIndex) compact(ctx context.Context, force bool) error {
	x.mu.Lock()
	if x.dropped == 0 || (!force && x.dropped < deadlineSnapshotEvery) || x.version == 0 {
		x.mu.Unlock()
		return nil
	}
	set := make([]indexRec, 0, len(x.entries))
	for _, e := range x.entries {
		set = append(set, e)
	}
	version := x.version
	x.dropped = 0
	x.mu.Unlock()
	slices.SortFunc(set, func(a, b indexRec) int { return a.At.Compare(b.At) })
	err := x.store.SaveSnapshot(ctx, runtime.Snapshot{Stream: x.stream, Version: version, Schema: deadlineSnapshotSchema, Data: encodeIndexSet(set)})
	if err != nil {
		return fmt.Errorf("saving the deadline index: %w", err)
	}
	return nil
}

// deadlineLoop fires the saga's deadlines as they fall due, until ctx is
// done (nil) or driving an instance fails. The index is loaded already.
func (r *sagaRunner[S]) deadlineLoop(ctx context.Context) error {
	stop := func(err error) error {
		if ctx.Err() != nil {
			_ = r.idx.compact(context.WithoutCancel(ctx), true)
			return nil
		}
		return err
	}
	for {
		next, err := r.fireDue(ctx)
		if err != nil || ctx.Err() != nil {
			return stop(err)
		}
		wait := r.cfg.poll
		if !next.IsZero() {
			wait = min(wait, next.Sub(r.cfg.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return stop(nil)
		case <-r.cfg.clock.After(wait):
		case <-r.idx.wake:
		}
	}
}

// fireDue reads new index entries, fires the deadlines due now and
// returns when the next one is due (zero if none is known).
func (r *sagaRunner[S]) fireDue(ctx context.Context) (time.Time, error) {
	if err := r.idx.tail(ctx); err != nil {
		return time.Time{}, &Error{Saga: r.saga.Name, Trigger: "deadline index", Err: err}
	}
	due, next := r.idx.due(r.cfg.clock.Now())
	for _, e := range due {
		if ctx.Err() != nil {
			return next, nil
		}
		done, err := r.fire(ctx, e)
		if err != nil {
			return next, err
		}
		if done {
			r.idx.drop(e)
		}
	}
	if err := r.idx.compact(ctx, false); err != nil {
		return next, &Error{Saga: r.saga.Name, Trigger: "deadline index", Err: err}
	}
	return next, nil
}

// fire makes the instance react to deadline e if it is still pending. It
// reports whether the entry is done with (fired, or stale); false means
// the reaction that set it is not visible yet.
func (r *sagaRunner[S]) fire(ctx context.Context, e indexRec) (bool, error) {
	d := Deadline{Instance: e.Instance, Name: e.Name, At: e.At}
	react := func(ctx context.Context, s *S, do *Actions) error {
		if r.saga.Deadline == nil {
			do.Fail(fmt.Errorf("deadline %q passed (%s)", d.Name, d.At.Format(time.RFC3339Nano)))
			return nil
		}
		return r.saga.Deadline(ctx, s, d, do)
	}
	return r.drive(ctx, e.Instance, e.Version, sagaTrigger{Deadline: e.Name, At: e.At}, "", react)
}
