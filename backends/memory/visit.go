package memory

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
)

var _ runtime.StreamVisitor = (*Store)(nil)

// VisitStream shows fn the events of stream with version > after, in
// order, as ReadStream yields them, without copying them: the view's Name
// and Data are the store's own, lent for the call, and every view is
// marked Stable: a body is written once, into an arena (or an allocation
// of its own) that nothing writes again. Hard deletes, truncation and
// Close drop the store's references to bodies and never clear them, and
// crypto-shredding clears only the subject's key, so a string a decoder
// slices from Data never changes; it keeps its arena (32 KiB) alive.
func (s *Store) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	op := func() string { return "read stream " + stream.String() }
	positions, chunks, err := s.streamRead(ctx, stream, after, op)
	if err != nil {
		return err
	}
	var v runtime.EventView
	for i, pos := range positions {
		if i%256 == 255 {
			if err := ctxErr(ctx, op); err != nil {
				return err
			}
		}
		e := at(chunks, pos)
		v = runtime.EventView{Version: e.version, Position: pos, Name: e.name, Schema: e.schema, Data: e.data, Stable: true}
		if err := fn(&v); err != nil {
			return err
		}
	}
	return nil
}
