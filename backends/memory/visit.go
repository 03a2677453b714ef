package memory

import (
	"context"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
)

var _ runtime.StreamVisitor = (*Store)(nil)

// VisitStream shows fn the events of stream with version > after, in
// order, as ReadStream yields them, without copying them: the view's Name
// and Data are the store's own (bodies in the arena are never written
// again once appended), lent for the call.
func (s *Store) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	op := func() string { return "read stream " + stream.String() }
	if err := ctxErr(ctx, op); err != nil {
		return err
	}
	if err := runtime.ValidateStream(stream); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return closedErr(op())
	}
	var positions []uint64
	var base uint64
	if st := s.streams[stream]; st != nil {
		positions, base = st.positions, st.base
	}
	chunks, truncated := s.chunks, s.truncated
	s.mu.RUnlock()

	// As ReadStream: versions start after base (a hard delete's), and a
	// read from before the first kept version fails (retention.go).
	if after >= base+uint64(len(positions)) {
		return nil
	}
	from := max(after, base) - base
	if err := truncatedRead(stream, positions, after, base, from, truncated); err != nil {
		return err
	}
	positions = positions[from:]
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
