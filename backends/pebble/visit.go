package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

var _ runtime.StreamVisitor = (*Store)(nil)

// visitBatch is how many events VisitStream shows per lock of its
// iterators (and per check of the context).
const visitBatch = 32

// VisitStream shows fn the events of stream with version > after, in
// order, up to the last acknowledged append, as ReadStream yields them
// but without building Records: the view's Name is Pebble's own buffer,
// lent for the call. Each record's checksum and stream, version and
// position are checked as ReadStream checks them; time, id and metadata
// are skipped over. A Close of the store waits for the call to fn in
// progress, then ends the visit with ErrClosed.
//
// Pebble reuses its iterators' memory, so the view's Data is a copy, made
// so that it can be marked Stable: the first event's body gets an
// allocation of its own, and the next ones share chunks (512 bytes, then
// 4 KiB) that nothing writes again, one allocation for many events instead
// of the decoder's one per event (a Load of 10 to 100 events measured
// 1.5-6% faster, docs/benchmarks-history.md). The cost is retention: a string
// a decoder slices from a view, and that the caller keeps (in the loaded
// state), keeps its whole chunk alive; strings of the first event (an
// aggregate's opening event, whose fields a state most often keeps) keep
// only that event's body.
func (s *Store) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	op := func() string { return "read stream " + stream.String() }
	var sr streamReader
	if ok, err := s.openStream(ctx, &sr, stream, after, op); !ok {
		return err
	}
	defer func() { _ = s.release(sr.t) }()
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return storekit.ContextErr(ctx, op())
		}
		done, err := sr.visit(first, fn)
		if err != nil {
			return err
		}
		if done {
			return s.finish(sr.t, op)
		}
	}
}

// visit shows fn up to visitBatch events under one lock of the iterators,
// which fn's view (r.view) borrows from.
func (r *streamReader) visit(first bool, fn func(*runtime.EventView) error) (bool, error) {
	v := &r.view
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return true, errStoreClosed
	}
	for i := range visitBatch {
		version, pos, val, done, err := r.next(first && i == 0)
		if done || err != nil {
			return true, err
		}
		if err := viewRecord(v, val, r.prefix[1:], version, pos); err != nil {
			return true, &runtime.DecodeError{Stream: r.stream, Version: version, Position: pos, What: "envelope", Err: err}
		}
		v.Data, v.Stable = r.stable(v.Data), true
		if err := fn(v); err != nil {
			return true, err
		}
	}
	return false, nil
}

// Chunk sizes of stable: the second chunk of a visit, and every later one.
const (
	visitChunkFirst = 512
	visitChunk      = 4 << 10
)

// stable returns a copy of body that nothing writes again (see
// VisitStream): the first body of the visit alone, the next ones carved
// from shared chunks, each a capacity-limited slice disjoint from the
// others (a chunk is written only past what it has handed out).
func (r *streamReader) stable(body []byte) []byte {
	n := len(body)
	if n == 0 {
		return body[:0:0]
	}
	if len(r.chunk) < n {
		r.chunks++
		switch r.chunks {
		case 1:
			return append([]byte(nil), body...)
		case 2:
			r.chunk = make([]byte, max(visitChunkFirst, n))
		default:
			r.chunk = make([]byte, max(visitChunk, n))
		}
	}
	out := r.chunk[:n:n]
	copy(out, body)
	r.chunk = r.chunk[n:]
	return out
}

// viewRecord checks record value val (checksum, envelope, and that it
// holds the event of the stream whose key (appendStreamKey) is sk at
// version and pos) and points v at its name and body, which alias val.
// A record's stream type and id are written as the stream key encodes
// them (two length-prefixed strings), so one comparison checks both.
func viewRecord(v *runtime.EventView, val []byte, sk []byte, version, pos uint64) error {
	body, err := unseal(val)
	if err != nil {
		return err
	}
	return viewBody(v, body, sk, version, pos)
}

// viewBody is viewRecord after the checksum: body is the record without
// it. (Split out so that the read ladder can price the parse alone.)
func viewBody(v *runtime.EventView, body []byte, sk []byte, version, pos uint64) error {
	head, err := recordHeadLen(body)
	if err != nil {
		return err
	}
	tail := body[len(body)-16:]
	ver, p := binary.BigEndian.Uint64(tail[0:8]), binary.BigEndian.Uint64(tail[8:16])
	fields := body[head : len(body)-16]
	if len(fields) < len(sk) || string(fields[:len(sk)]) != string(sk) || ver != version || p != pos {
		c := cursor{b: fields}
		typ, id := c.bytes(), c.bytes()
		return fmt.Errorf("record holds %s version %d position %d", runtime.StreamID{Type: string(typ), ID: string(id)}, ver, p)
	}
	c := cursor{b: fields, off: len(sk)}
	name := c.bytes()
	schema, _, nsec, n := c.numbers()
	if c.bad || schema > math.MaxUint32 || nsec >= 1e9 || n > uint64(len(c.b)-c.off)/2 {
		return errTruncated
	}
	for range 2 * n {
		c.bytes() // metadata keys and values
	}
	data := c.bytes()
	if c.bad || c.off != len(c.b) {
		return errTruncated
	}
	*v = runtime.EventView{Version: ver, Position: p, Schema: uint32(schema), Data: data}
	if len(name) > 0 {
		v.Name = unsafe.String(&name[0], len(name))
	}
	return nil
}
