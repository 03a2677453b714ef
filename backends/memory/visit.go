package memory

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
)

var _ runtime.StreamVisitor = (*Store)(nil)

// VisitStream shows fn the events of stream with version > after, in
// order, as ReadStream yields them, without copying them: the view's Name
// and Data are the store's own (bodies in the arena are never written
// again once appended), lent for the call.
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
		v = runtime.EventView{Version: e.version, Position: pos, Name: e.name, Schema: e.schema, Data: e.data}
		if err := fn(&v); err != nil {
			return err
		}
	}
	return nil
}
