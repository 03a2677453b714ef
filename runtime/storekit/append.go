package storekit

import (
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/eventid"
)

// Stamp gives the events of one append what a store fills in: the id of an
// event that has none (runtime.EventData.ID) and the time of an event
// that has none. Ids come from one block reserved for the append
// (reserved once, at the first event without an id), and every time the store fills in is one clock
// reading, which also stamps the idempotency record (Now). All times are
// normalised (NormalizeTime). The zero Stamp is not usable; make one with
// NewStamp, and call Event in event order.
type Stamp struct {
	events []runtime.EventData
	now    func() time.Time
	clock  time.Time       // the append's clock reading, zero until read
	next   runtime.EventID // the next id of the reserved block, zero until reserved
}

// NewStamp returns the stamp of req's events. It reads now at once when the
// append needs the time (an event without one, or an idempotency key), so
// that a store can call it before taking its lock.
func NewStamp(req runtime.AppendRequest, now func() time.Time) Stamp {
	s := Stamp{events: req.Events, now: now}
	need := req.IdempotencyKey != ""
	for i := 0; i < len(req.Events) && !need; i++ {
		need = req.Events[i].Time.IsZero()
	}
	if need {
		s.Now()
	}
	return s
}

// Now returns the append's clock reading (UTC, no monotonic reading),
// reading the clock the first time.
func (s *Stamp) Now() time.Time {
	if s.clock.IsZero() {
		s.clock = NormalizeTime(time.Time{}, s.now)
	}
	return s.clock
}

// Event returns the id and the time that event i is stored with: its own,
// or the next id of the append's block (reserved at the first event without
// one, for it and the events after it) and the append's clock reading.
// Calls must go in event order.
func (s *Stamp) Event(i int) (runtime.EventID, time.Time) {
	e := &s.events[i]
	id := e.ID
	if id.IsZero() {
		if s.next.IsZero() {
			s.next = runtime.EventID(eventid.Block(len(s.events) - i))
		}
		id, s.next = s.next, eventid.Next(s.next)
	}
	if e.Time.IsZero() {
		return id, s.Now()
	}
	return id, NormalizeTime(e.Time, s.now)
}

// Check decides whether req may be written, given the version of its
// stream (actual) and the store's head before it, both read under the lock
// or in the transaction that writes it, and returns where its events go.
// The rules, in their order:
//
//  1. An idempotency key already recorded (found, with its first record
//     existing) fails with a *runtime.DuplicateError, whatever the expected
//     version: the caller is retrying an append that succeeded.
//  2. An expected version the stream is not at fails with a
//     *runtime.ConflictError (see CheckExpected).
//  3. A stream that would pass runtime.MaxVersion fails with an error
//     matching runtime.ErrTooLarge.
//
// Otherwise the events take the versions after actual and the positions
// after head, in order.
func Check(req runtime.AppendRequest, actual, head uint64, existing runtime.IdempotencyRecord, found bool) (runtime.AppendResult, error) {
	if found {
		return runtime.AppendResult{}, &runtime.DuplicateError{Existing: existing}
	}
	if err := CheckExpected(req.Stream, req.Expected, actual); err != nil {
		return runtime.AppendResult{}, err
	}
	n := uint64(len(req.Events))
	if actual > runtime.MaxVersion || n > runtime.MaxVersion-actual {
		return runtime.AppendResult{}, fmt.Errorf("%w: append of %d events to %s at version %d would pass the maximum version %d",
			runtime.ErrTooLarge, n, req.Stream, actual, runtime.MaxVersion)
	}
	return runtime.AppendResult{
		FirstVersion: actual + 1, LastVersion: actual + n,
		FirstPosition: head + 1, LastPosition: head + n,
	}, nil
}

// KeyRecord is the idempotency record that an append with a key writes
// atomically with its events (res is its result, at the append's clock
// reading, Stamp.Now): the first result, which a retry under the key
// gets back in a *runtime.DuplicateError.
func KeyRecord(req runtime.AppendRequest, res runtime.AppendResult, at time.Time) runtime.IdempotencyRecord {
	return runtime.IdempotencyRecord{
		Key: req.IdempotencyKey, Stream: req.Stream,
		Version: res.LastVersion, Position: res.LastPosition, Time: at,
	}
}
