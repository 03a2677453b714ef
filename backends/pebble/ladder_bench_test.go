package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// The ladder benchmarks split a read's cost per event into the steps
// between raw Pebble's work and what the store's API hands out, each step
// measured as a whole read on the same database in rotated turns, so that
// the difference between two neighbouring rungs is what the step adds (see
// docs/benchmarks-history.md, "Reads at the limit (issue 18), third round"):
//
//	go test ./backends/pebble -run '^$' -bench 'Ladder' -benchtime 2000x
//
// Every rung reports its p50 (streams) or mean (whole log) in ns per event.

// rawWalk reads stream st the way rawReadStream does (index iterator, the
// records iterator moved by Next or a seek) and calls fn with each record's
// version, position and value, which is valid only during the call.
func rawWalk(db *pebbledb.DB, st runtime.StreamID, fn func(version, pos uint64, v []byte) error) (int, error) {
	prefix := streamIndexPrefix(nil, st)
	idx, err := db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	recs, err := db.NewIter(&eventBounds)
	if err != nil {
		return 0, errors.Join(err, idx.Close())
	}
	var key [9]byte
	key[0] = tagEvent
	n := 0
	for ok := idx.First(); ok && err == nil; ok = idx.Next() {
		var v, rv []byte
		if v, err = idx.ValueAndErr(); err != nil {
			break
		}
		prev := binary.BigEndian.Uint64(key[1:])
		copy(key[1:], v)
		pos := binary.BigEndian.Uint64(v)
		if prev == 0 || prev+1 != pos || !recs.Next() || string(recs.Key()) != string(key[:]) {
			if !recs.SeekGE(key[:]) || string(recs.Key()) != string(key[:]) {
				err = fmt.Errorf("record %x missing", key)
				break
			}
		}
		if rv, err = recs.ValueAndErr(); err != nil {
			break
		}
		k := idx.Key()
		err = fn(binary.BigEndian.Uint64(k[len(k)-8:]), pos, rv)
		n++
	}
	return n, errors.Join(err, idx.Close(), recs.Close())
}

// ladderRung is one step of a ladder: a whole read of stream st (or of the
// log) that returns how many events it saw.
type ladderRung struct {
	name string
	read func(st runtime.StreamID) (int, error)
}

// runLadder runs rungs in rotated turns b.N times over streams and
// reports each rung's p50 per event, and the ratio of the first rung to
// name "copy" (raw Pebble with the value copied, the limit of the paired
// benchmarks) to each of the store's own rungs.
func runLadder(b *testing.B, streams []runtime.StreamID, size int, rungs []ladderRung) {
	times := make([][]time.Duration, len(rungs))
	for i := range times {
		times[i] = make([]time.Duration, 0, b.N)
	}
	b.ResetTimer()
	for i := range b.N {
		st := streams[i%len(streams)]
		for j := range rungs {
			k := (i + j) % len(rungs)
			t0 := time.Now()
			n, err := rungs[k].read(st)
			times[k] = append(times[k], time.Since(t0))
			if err != nil || n != size {
				b.Fatalf("%s: %d events (%v), want %d", rungs[k].name, n, err, size)
			}
		}
	}
	b.StopTimer()
	for k, r := range rungs {
		slices.Sort(times[k])
		b.ReportMetric(float64(times[k][len(times[k])/2].Nanoseconds())/float64(size), r.name+"-ns/ev")
	}
}

// BenchmarkReadStreamLadder splits a stream read (streams of the bank
// fixture's stream type, so that the generated repository can load them)
// into rungs:
//
//	pebble      raw index iteration and record next-or-seek, nothing done with the value
//	copy        + the value copied into one reused buffer (the raw limit)
//	checksum    pebble + the record's CRC-32C checked
//	parse       pebble + envelope parse and stream/version/position check, no checksum (viewBody)
//	view        pebble + checksum, envelope parse and stream/version/position check (viewRecord)
//	decode      pebble + checksum, parse, owned copy into the read's slab, the Record (decodeRecordInto)
//	visit       the store's VisitStream (view + the store's own read: bounds, lock, tracking)
//	readstream  the store's ReadStream (decode + batches + yield)
//	snapshot    LoadSnapshot of a stream without one (answered by the snapshot set, snapset.go; per event only for comparison)
//	load        the generated repository's Load: snapshot lookup + visit + typed decode + Apply
//
// Streams are written as BenchmarkReadStreamPaired's (up to 100 events per
// append, between appends of as many noise events). With events=1 (1,000
// one-event streams) the rungs price a read's fixed cost: what the store's
// read adds per call rather than per event.
func BenchmarkReadStreamLadder(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			readStreamLadder(b, size, max(200, 1000/size))
		})
	}
}

func readStreamLadder(b *testing.B, size, aggs int) {
	s, streams := readStoreOf(b, account.AccountStreamType, size, aggs)
	defer s.Close()
	ctx := context.Background()
	repo := account.NewAccountRepository(s)
	var buf []byte
	var rec runtime.Record
	var view runtime.EventView
	rungs := []ladderRung{
		{"pebble", func(st runtime.StreamID) (int, error) {
			return rawWalk(s.db, st, func(_, _ uint64, v []byte) error { return nil })
		}},
		{"copy", func(st runtime.StreamID) (int, error) {
			return rawWalk(s.db, st, func(_, _ uint64, v []byte) error { buf = append(buf[:0], v...); return nil })
		}},
		{"checksum", func(st runtime.StreamID) (int, error) {
			return rawWalk(s.db, st, func(_, _ uint64, v []byte) error { _, err := unseal(v); return err })
		}},
		{"parse", func(st runtime.StreamID) (int, error) {
			sk := appendStreamKey(nil, st)
			return rawWalk(s.db, st, func(ver, pos uint64, v []byte) error {
				if len(v) < 5 {
					return errTruncated
				}
				return viewBody(&view, v[:len(v)-4], sk, ver, pos)
			})
		}},
		{"view", func(st runtime.StreamID) (int, error) {
			sk := appendStreamKey(nil, st)
			return rawWalk(s.db, st, func(ver, pos uint64, v []byte) error { return viewRecord(&view, v, sk, ver, pos) })
		}},
		{"decode", func(st runtime.StreamID) (int, error) {
			var sl slab
			return rawWalk(s.db, st, func(_, _ uint64, v []byte) error { return decodeRecordInto(&rec, v, &st, &sl) })
		}},
		{"visit", func(st runtime.StreamID) (int, error) {
			n := 0
			err := s.VisitStream(ctx, st, 0, func(*runtime.EventView) error { n++; return nil })
			return n, err
		}},
		{"readstream", func(st runtime.StreamID) (int, error) {
			n := 0
			for _, err := range s.ReadStream(ctx, st, 0) {
				if err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}},
		{"snapshot", func(st runtime.StreamID) (int, error) {
			if _, err := s.LoadSnapshot(ctx, st); !errors.Is(err, runtime.ErrNotFound) {
				return 0, err
			}
			return size, nil
		}},
		{"load", func(st runtime.StreamID) (int, error) {
			a, v, err := repo.Load(ctx, st.ID)
			if err == nil && a.Deposits != size {
				err = fmt.Errorf("loaded %d deposits", a.Deposits)
			}
			return int(v), err
		}},
	}
	runLadder(b, streams, size, rungs)
}

// BenchmarkReadAllLadder splits a scan of a 100,000-event log (laid out as
// BenchmarkReadAllPaired's) into rungs, each the mean over whole scans:
//
//	pebble    raw iterator over the event keys, nothing done with the value
//	copy      + the value copied into one reused buffer (the raw limit)
//	checksum  pebble + the CRC-32C checked
//	parse     pebble + envelope parse, no checksum (the ceiling of a read that keeps no per-record check)
//	view      pebble + checksum and envelope parse, nothing copied (what a lending log visitor would cost)
//	decode    pebble + checksum, parse, owned copy into the scan's slab, the Record (decodeRecordInto)
//	readall   the store's ReadAll (decode + batches + yield)
//	typed     ReadAll + each record decoded into its typed event (the generated table's Decode, boxed)
func BenchmarkReadAllLadder(b *testing.B) {
	const total = 100_000
	s, _ := readStoreOf(b, account.AccountStreamType, 500, total/1000)
	defer s.Close()
	ctx := context.Background()
	events := account.AccountEvents()
	var buf []byte
	var rec runtime.Record
	var view runtime.EventView
	scan := func(fn func(k, v []byte) error) (int, error) {
		it, err := s.db.NewIter(&eventBounds)
		if err != nil {
			return 0, err
		}
		n := 0
		for ok := it.First(); ok && err == nil; ok = it.Next() {
			var v []byte
			if v, err = it.ValueAndErr(); err == nil {
				err = fn(it.Key(), v)
			}
			n++
		}
		return n, errors.Join(err, it.Close())
	}
	readAll := func(typed bool) (int, error) {
		n := 0
		for r, err := range s.ReadAll(ctx, 0) {
			if err == nil && typed {
				_, err = events.Decode(r.Name, r.Schema, r.Data)
			}
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	rungs := []ladderRung{
		{"pebble", func(runtime.StreamID) (int, error) { return scan(func(_, _ []byte) error { return nil }) }},
		{"copy", func(runtime.StreamID) (int, error) {
			return scan(func(_, v []byte) error { buf = append(buf[:0], v...); return nil })
		}},
		{"checksum", func(runtime.StreamID) (int, error) {
			return scan(func(_, v []byte) error { _, err := unseal(v); return err })
		}},
		{"parse", func(runtime.StreamID) (int, error) {
			return scan(func(k, v []byte) error {
				if len(v) < 5 {
					return errTruncated
				}
				return viewLogBody(&view, v[:len(v)-4], binary.BigEndian.Uint64(k[1:]))
			})
		}},
		{"view", func(runtime.StreamID) (int, error) {
			return scan(func(k, v []byte) error { return viewLogRecord(&view, v, binary.BigEndian.Uint64(k[1:])) })
		}},
		{"decode", func(runtime.StreamID) (int, error) {
			var sl slab
			return scan(func(_, v []byte) error { return decodeRecordInto(&rec, v, nil, &sl) })
		}},
		{"readall", func(runtime.StreamID) (int, error) { return readAll(false) }},
		{"typed", func(runtime.StreamID) (int, error) { return readAll(true) }},
	}
	runLadder(b, []runtime.StreamID{{}}, total, rungs)
}

// viewLogRecord is viewRecord for a record read from the log, whose stream
// is not known beforehand: the checksum, the envelope parse and the
// position check, nothing copied. It measures what a lending ReadAll
// would cost per record; the store has no such read.
func viewLogRecord(v *runtime.EventView, val []byte, pos uint64) error {
	body, err := unseal(val)
	if err != nil {
		return err
	}
	return viewLogBody(v, body, pos)
}

// viewLogBody is viewLogRecord after the checksum (the parse rung).
func viewLogBody(v *runtime.EventView, body []byte, pos uint64) error {
	head, err := recordHeadLen(body)
	if err != nil {
		return err
	}
	c := cursor{b: body[head : len(body)-16]}
	c.bytes() // stream type
	c.bytes() // stream id
	name := c.bytes()
	schema, _, nsec, n := c.numbers()
	if c.bad || nsec >= 1e9 || n > uint64(len(c.b)-c.off)/2 {
		return errTruncated
	}
	for range 2 * n {
		c.bytes()
	}
	data := c.bytes()
	if c.bad || c.off != len(c.b) || binary.BigEndian.Uint64(body[len(body)-8:]) != pos {
		return errTruncated
	}
	*v = runtime.EventView{Version: binary.BigEndian.Uint64(body[len(body)-16:]), Position: pos, Schema: uint32(schema), Data: data}
	if len(name) > 0 {
		v.Name = unsafe.String(&name[0], len(name))
	}
	return nil
}
