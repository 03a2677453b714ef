package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// rawStreamRead reads one stream's events on the Pebble store's key layout
// the least costly way a reader of that layout can: a bounded iterator
// over the stream's index keys (lower to upper) and, per entry, a second
// iterator moved to the record, by a Next when it follows the previous
// record (the records of one append have consecutive positions) and by a
// seek otherwise, as the store does; each value is copied into buf, one
// buffer reused, and n counts the records. It is the limit of the load
// rows: the same keys and bytes as the store reads, without the store's
// checks, decoding or copies. With seekOnly every record is sought, as the
// limit of issue 18 was defined (and as the store read before it used
// Next): a weaker limit, kept beside the real one for comparison.
func rawStreamRead(db *pebbledb.DB, lower, upper, buf []byte, seekOnly bool) (n int, out []byte, err error) {
	idx, err := db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, buf, err
	}
	var recs *pebbledb.Iterator
	defer func() {
		err = errors.Join(err, idx.Close())
		if recs != nil {
			err = errors.Join(err, recs.Close())
		}
	}()
	var pk [9]byte
	pk[0] = 'p'
	for ok := idx.First(); ok; ok = idx.Next() {
		v, err := idx.ValueAndErr()
		if err != nil {
			return n, buf, err
		}
		if len(v) != 8 {
			return n, buf, fmt.Errorf("index entry %x holds %d bytes", idx.Key(), len(v))
		}
		if recs == nil {
			if recs, err = db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}}); err != nil {
				return n, buf, err
			}
		}
		prev := binary.BigEndian.Uint64(pk[1:])
		copy(pk[1:], v)
		if seekOnly || prev == 0 || prev+1 != binary.BigEndian.Uint64(v) || !recs.Next() || !bytes.Equal(recs.Key(), pk[:]) {
			if !recs.SeekGE(pk[:]) || !bytes.Equal(recs.Key(), pk[:]) {
				return n, buf, fmt.Errorf("record %x missing", pk)
			}
		}
		rv, err := recs.ValueAndErr()
		if err != nil {
			return n, buf, err
		}
		buf = append(buf[:0], rv...)
		n++
	}
	return n, buf, nil
}

// rawMemoryOf copies the events of the memory store s into a rawMemory,
// stream by stream in position order (the same bodies), and returns it
// with each stream's snapshot body, by stream id: the data of the memory
// load limits.
func rawMemoryOf(ctx context.Context, s runtime.Store) (*rawMemory, map[string][]byte, error) {
	m := newRawMemory()
	var w rawMemoryWriter
	snaps := make(map[string][]byte)
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			return nil, nil, fmt.Errorf("bench: copying the memory store: %w", err)
		}
		if m.append(&w, rec.Stream.ID, [][]byte{rec.Data}) == 1 {
			sn, err := s.LoadSnapshot(ctx, rec.Stream)
			switch {
			case err == nil:
				snaps[rec.Stream.ID] = sn.Data
			case !errors.Is(err, runtime.ErrNotFound):
				return nil, nil, fmt.Errorf("bench: copying the memory store: %w", err)
			}
		}
	}
	return m, snaps, nil
}

// rawMemoryLoad returns the memory limit's load operation: the least a
// load from memory must do: (with snap, copy the snapshot's body; then)
// take the stream's positions and the chunk list under the lock and copy
// each body after the snapshot into one reused buffer. The memory store's
// ReadStream also builds a Record per event and hands out copies the
// caller owns.
func rawMemoryLoad(m *rawMemory, snaps map[string][]byte, size int, snap bool, aggs int, id func(int) string) func(context.Context, int) error {
	var next atomic.Int64
	var buf []byte // one goroutine drives the loads
	return func(context.Context, int) error {
		sid := id(int(next.Add(1)) % aggs)
		after := 0
		if snap {
			b, ok := snaps[sid]
			if !ok {
				return fmt.Errorf("raw memory: no snapshot of %s", sid)
			}
			buf = append(buf[:0], b...)
			after = size
		}
		m.mu.Lock()
		idx := m.streams[sid]
		var positions []uint64
		if idx != nil {
			positions = *idx
		}
		chunks := m.chunks
		m.mu.Unlock()
		if len(positions) != size {
			return fmt.Errorf("raw memory: %s holds %d events, want %d", sid, len(positions), size)
		}
		for _, p := range positions[after:] {
			buf = append(buf[:0], chunks[(p-1)/rawMemoryChunk][(p-1)%rawMemoryChunk]...)
		}
		return nil
	}
}
