package runtime

import (
	"bytes"
	"context"
	"errors"
)

// EventView is one stored event as a StreamVisitor shows it, borrowed from
// the store: valid only during the call that receives it, never modified.
type EventView struct {
	Version  uint64
	Position uint64
	Name     string
	Schema   uint32
	Data     []byte
	// Stable reports that Data's bytes are never written again, by the
	// store or anyone, for as long as anything refers to them: a decoder
	// may then keep them (slice its strings from Data) instead of copying
	// what it keeps. Only the bytes outlive the call, not the view, and
	// Name is still borrowed. A store sets it only for bytes it never
	// reuses or rewrites, whatever happens to the stream afterwards
	// (appends, deletes, truncation, crypto-shredding, Close); see package
	// storekit.
	Stable bool
}

// StreamVisitor is the optional store capability behind Repository.Load:
// the store lends a stream's events to a callback instead of copying them
// into Records. Wrappers hide it. The contract for store authors: package
// storekit.
type StreamVisitor interface {
	// VisitStream calls fn with each event ReadStream(ctx, stream, after)
	// would yield; fn must not call the store.
	VisitStream(ctx context.Context, stream StreamID, after uint64, fn func(*EventView) error) error
}

// visitorOf returns store as a StreamVisitor, or nil (wrappers are not
// looked through: see package storekit's doc on StreamVisitor).
func visitorOf(store Store) StreamVisitor {
	v, _ := store.(StreamVisitor)
	return v
}

// visitLoad evolves state by the events of stream after version through
// the store's StreamVisitor and the event table t, and returns the
// version reached. Generated decoders copy what they keep (strings,
// bytes), so the borrowed bytes never outlive the call, except through
// StableEvolver for a view marked Stable, whose bytes may be kept; the
// errors copy the name (lookup's UnknownEventError, DecodeError's What).
func visitLoad[S, I any](ctx context.Context, v StreamVisitor, t EventTable[S, I], stream StreamID, state *S, version uint64) (uint64, error) {
	st, _ := t.(StableEvolver[S])
	err := v.VisitStream(ctx, stream, version, func(e *EventView) error {
		if e.Name == TombstoneEvent { // a deleted stream: see DeleteStream
			return deleted(Record{Stream: stream, Version: e.Version, Position: e.Position, Name: e.Name, Schema: e.Schema, Data: bytes.Clone(e.Data)})
		}
		var err error
		if e.Stable && st != nil {
			err = st.EvolveStable(state, e.Name, e.Schema, e.Data)
		} else {
			err = t.Evolve(state, e.Name, e.Schema, e.Data)
		}
		if err != nil {
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
