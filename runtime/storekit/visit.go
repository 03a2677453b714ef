package storekit

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// VisitStream visits the events of stream with version > after as a
// runtime.StreamVisitor does, for wrappers of a store that implement the
// capability themselves (instrument.Store and tenant.Store do): through
// store's own VisitStream when store has one, else through its ReadStream,
// showing each Record as a view marked Stable. It returns fn's first error,
// or the error ReadStream yields.
//
// The views of the fallback are Stable because the runtime.Store contract
// gives a ReadStream's Records to the caller: the caller may keep them, so
// no store writes a yielded Record's Data again (the three stores copy each
// body into memory no later record uses: memory and Pebble carve disjoint,
// capacity-limited slices from chunks they only append to, PostgreSQL
// allocates each body), and this function hands the Record to nobody but
// fn. Loading through the fallback therefore saves the decoders' copy of
// each body, though not the store's.
func VisitStream(ctx context.Context, store runtime.Store, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	if v, ok := store.(runtime.StreamVisitor); ok {
		return v.VisitStream(ctx, stream, after, fn)
	}
	var view runtime.EventView
	for rec, err := range store.ReadStream(ctx, stream, after) {
		if err != nil {
			return err
		}
		view = runtime.EventView{Version: rec.Version, Position: rec.Position, Name: rec.Name, Schema: rec.Schema, Data: rec.Data, Stable: true}
		if err := fn(&view); err != nil {
			return err
		}
	}
	return nil
}
