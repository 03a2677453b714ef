package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"iter"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// StreamInfo describes one stream as Streams lists it: its last
// acknowledged version and that version's global position.
type StreamInfo = storekit.StreamInfo

// Streams yields the streams that have at least one acknowledged event, in
// the store's key order (by stream type length, type, id length, id),
// optionally only those of stream type typ ("" for all), starting after
// the stream after (the zero StreamID to start at the beginning). Pass the
// last stream of one page as after to get the next page. With a type
// filter, after must be of that type or zero. It implements
// storekit.StreamLister.
func (s *Store) Streams(ctx context.Context, typ string, after runtime.StreamID) iter.Seq2[StreamInfo, error] {
	return func(yield func(StreamInfo, error) bool) {
		const op = "list streams"
		if after != (runtime.StreamID{}) {
			if err := runtime.ValidateStream(after); err != nil {
				yield(StreamInfo{}, err)
				return
			}
			if typ != "" && after.Type != typ {
				yield(StreamInfo{}, fmt.Errorf("%w: list streams of type %q after a stream of type %q", runtime.ErrInvalid, typ, after.Type))
				return
			}
		}
		lower, upper := []byte{tagStream}, []byte{tagStream + 1}
		if typ != "" {
			lower = append(binary.AppendUvarint([]byte{tagStream}, uint64(len(typ))), typ...)
			upper = prefixEnd(lower)
		}
		if after != (runtime.StreamID{}) {
			lower = prefixEnd(streamIndexPrefix(nil, after))
		}
		s.wmu.Lock()
		limit := s.acked
		s.wmu.Unlock()
		t, err := s.newIter(ctx, func() string { return op }, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			yield(StreamInfo{}, err)
			return
		}
		defer func() { _ = s.release(t) }()
		for first := true; ; first = false {
			if err := storekit.ContextErr(ctx, op); err != nil {
				yield(StreamInfo{}, err)
				return
			}
			info, done, err := streamsStep(t, first, limit)
			if done && err == nil {
				err = s.finish(t, func() string { return op })
			}
			if err != nil {
				yield(StreamInfo{}, err)
				return
			}
			if done {
				return
			}
			if info.Version == 0 {
				continue // no acknowledged event yet
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// streamsStep moves t to the next stream and returns it with its last
// version at or below limit, leaving t on that stream's last entry.
func streamsStep(t *trackedIter, first bool, limit uint64) (StreamInfo, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return StreamInfo{}, true, errStoreClosed
	}
	var ok bool
	if first {
		ok = t.it.First()
	} else {
		ok = t.it.Next()
	}
	if !ok {
		return StreamInfo{}, true, nil
	}
	stream, rest, ok := parseStreamKey(t.it.Key()[1:])
	if !ok || len(rest) != 8 {
		return StreamInfo{}, true, &runtime.DecodeError{What: "stream index", Err: fmt.Errorf("malformed key %x", t.it.Key())}
	}
	prefix := streamIndexPrefix(nil, stream)
	// Jump to the stream's last entry, then walk back past entries that
	// are not yet acknowledged.
	if !t.it.SeekLT(prefixEnd(prefix)) {
		return StreamInfo{}, true, t.it.Error()
	}
	info := StreamInfo{Stream: stream}
	for {
		k := t.it.Key()
		v, err := t.it.ValueAndErr()
		if err != nil {
			return StreamInfo{}, true, err
		}
		if len(k) != len(prefix)+8 || len(v) != 8 {
			return StreamInfo{}, true, &runtime.DecodeError{Stream: stream, What: "stream index", Err: fmt.Errorf("malformed entry %x", k)}
		}
		if p := binary.BigEndian.Uint64(v); p <= limit {
			info.Version, info.LastPosition = binary.BigEndian.Uint64(k[len(prefix):]), p
			break
		}
		if !t.it.Prev() || string(t.it.Key()[:min(len(t.it.Key()), len(prefix))]) != string(prefix) {
			break
		}
	}
	// Leave the iterator on the stream's last entry so Next moves on.
	if !t.it.SeekLT(prefixEnd(prefix)) {
		return StreamInfo{}, true, t.it.Error()
	}
	return info, false, nil
}
