package runtime

import (
	"bytes"
	"context"
	"errors"
)

// EventView is one stored event as a StreamVisitor shows it: the fields an
// aggregate load needs, borrowed from the store. Name and Data may alias
// the store's own buffers: they are valid only during the call that
// receives the view, and must be neither modified nor kept.
type EventView struct {
	Version  uint64
	Position uint64
	Name     string
	Schema   uint32
	Data     []byte
}

// StreamVisitor is the optional store capability behind the repository's
// Load: a store that can show a stream's events to a callback without
// copying them into Records implements it, and Repository.Load (for
// aggregates with an event table, Aggregate.Events) reads through it
// instead of ReadStream. A Load consumes each event at once (decodes it
// into the state), so the copy ReadStream must make, that the caller may
// keep its Records, is work for nothing there, as are the event's time,
// id and metadata, which Load never reads. Only the store the repository
// was given is asked, never the store behind a wrapper's Unwrap: a
// wrapper changes what a read means (tenant.Scope rewrites the stream,
// InstrumentedStore counts the read), so it hides the capability unless
// it implements it itself, and Load then uses the wrapper's ReadStream.
type StreamVisitor interface {
	// VisitStream calls fn with each event of stream with version > after,
	// in version order: the events ReadStream(ctx, stream, after) would
	// yield, under the same validation and errors. The view and what it
	// points to are valid only during the call to fn. It returns fn's first
	// error, ending the visit, or the store's own (a *DecodeError for a
	// damaged record, ctx's error, ErrClosed). fn must not call the store:
	// a store may hold a lock of the read while fn runs (Pebble's Close
	// waits for the call in progress).
	VisitStream(ctx context.Context, stream StreamID, after uint64, fn func(*EventView) error) error
}

// visitorOf returns store as a StreamVisitor, or nil (see StreamVisitor:
// wrappers are not looked through).
func visitorOf(store Store) StreamVisitor {
	v, _ := store.(StreamVisitor)
	return v
}

// visitLoad evolves state by the events of stream after version through
// the store's StreamVisitor and the event table t, and returns the
// version reached. Generated decoders copy what they keep (strings,
// bytes), so the borrowed bytes never outlive the call; so do the errors,
// which copy the name (lookup's UnknownEventError, DecodeError's What).
func visitLoad[S, I any](ctx context.Context, v StreamVisitor, t EventTable[S, I], stream StreamID, state *S, version uint64) (uint64, error) {
	err := v.VisitStream(ctx, stream, version, func(e *EventView) error {
		if e.Name == TombstoneEvent { // a deleted stream: see DeleteStream
			return deleted(Record{Stream: stream, Version: e.Version, Position: e.Position, Name: e.Name, Schema: e.Schema, Data: bytes.Clone(e.Data)})
		}
		if err := t.Evolve(state, e.Name, e.Schema, e.Data); err != nil {
			if errors.Is(err, ErrRetired) {
				version = e.Version // retired: skipped, but its version counts
				return nil
			}
			return &DecodeError{Stream: stream, Version: e.Version, Position: e.Position, What: "event " + e.Name, Err: err}
		}
		version = e.Version
		return nil
	})
	return version, err
}
