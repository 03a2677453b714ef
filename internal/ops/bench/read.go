package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

const (
	readStreams = 1000
	readBatch   = 500
)

// readCases fills each store with the whole-log workload and measures
// ReadAll and a runtime.Subscribe catch-up from position 0.
func (r *runner) readCases(ctx context.Context) error {
	const all, sub = "read/all", "read/subscribe"
	if !r.selected(all) && !r.selected(sub) {
		return nil
	}
	for _, store := range r.cfg.Stores {
		if err := r.readStoreCase(ctx, store, r.selected(all), r.selected(sub)); err != nil {
			return err
		}
	}
	return nil
}

// readStoreCase fills one store with the whole-log workload, sets up the
// limit's scan beside it and measures both. Pebble's limit scans a
// checkpoint of the store's own database after both are flushed and
// compacted (settle.go), so that the two sides read the same bytes in the
// same layout; PostgreSQL's reads the store's own schema in one query
// (rawPGScan).
func (r *runner) readStoreCase(ctx context.Context, store string, doAll, doSub bool) (err error) {
	total := r.lim.logEvents
	fill := func(s runtime.Store) error {
		err := populateLog(ctx, total, func(ctx context.Context, stream int, version uint64, n int) error {
			_, err := s.Append(ctx, runtime.AppendRequest{
				Stream:   runtime.StreamID{Type: streamType, ID: fmt.Sprintf("log-%d", stream)},
				Expected: version, Events: sampleBatch(n),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("bench: populating %s for reads: %w", store, err)
		}
		return nil
	}
	s, raw, closeAll, err := r.openFilled(ctx, store, fill)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(); err == nil {
			err = cerr
		}
	}()
	var limit *scanSide
	switch store {
	case "pebble":
		limit = &scanSide{name: "read/all", subject: "raw pebble (scan event keys of the same compacted tables, copy each value)",
			kind: KindLimit, read: rawPebbleScan(raw.pebble), misses: func() int64 { return raw.pebble.Metrics().BlockCache.Misses }}
	case "memory":
		limit = &scanSide{name: "read/all", subject: "raw memory (slice scan, copy each body)", kind: KindLimit, read: rawMemoryScan(total)}
	case "postgres":
		conn, err := r.rawPGConn(ctx, rawPGScanSettings...)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := conn.Close(context.WithoutCancel(ctx)); err == nil {
				err = cerr
			}
		}()
		limit = &scanSide{name: "read/all", subject: rawPGScanSubject, kind: KindLimit, read: rawPGScan(ctx, conn, raw.pgSchema)}
	}
	return r.readStore(ctx, store, s, limit, doAll, doSub)
}

// populateLog appends total events in batches of readBatch over
// readStreams streams from 16 goroutines, through put.
func populateLog(ctx context.Context, total int64, put func(ctx context.Context, stream int, version uint64, n int) error) error {
	ops := (total + readBatch - 1) / readBatch
	versions := make([]uint64, readStreams)
	var next atomic.Int64
	_, err := drive(ctx, nopProgress{}, "populate", 16, ops, time.Hour, func(ctx context.Context, w int) error {
		i := next.Add(1) - 1
		n := int(min(readBatch, total-i*readBatch))
		// Each writer owns the streams congruent to it mod 16.
		stream := int(i)%(readStreams/16)*16 + w
		if err := put(ctx, stream, versions[stream], n); err != nil {
			return err
		}
		versions[stream] += uint64(n)
		return nil
	})
	return err
}

// readRounds is how many turns each side of a whole-log read takes: the
// limit's scan, ReadAll and Subscribe alternate, their order rotated every
// round, so that a drift of the shared machine's speed falls on every side.
// A turn of the memory store lasts 30-60 ms, in which one collection or
// one preemption by another process moves it by half; the rows report the
// median turn, which nine turns make steady (three summed turns put
// memory's Subscribe at 0.63x-1.57x of ReadAll in four runs of one binary).
const readRounds = 9

// scanSide is one way of reading the whole log: read yields each event's
// body size.
type scanSide struct {
	name, subject, kind string
	read                func(yield func(int) bool) error
	turns               []float64 // seconds of each timed turn
	// misses, when set, counts the block cache misses of the side's
	// database so far: the rows note how many fell in the timed turns.
	misses func() int64
}

// readStore measures the whole-log reads of a filled store beside limit
// (nil when the store has none).
func (r *runner) readStore(ctx context.Context, store string, s runtime.Store, limit *scanSide, doAll, doSub bool) error {
	total := r.lim.logEvents
	var all, sub *scanSide
	sides := []*scanSide{}
	if limit != nil {
		sides = append(sides, limit)
	}
	if doAll {
		all = &scanSide{name: "read/all", subject: store + " store (ReadAll)", kind: KindCqrsgen, read: func(yield func(int) bool) error {
			for rec, err := range s.ReadAll(ctx, 0) {
				if err != nil {
					return err
				}
				if !yield(len(rec.Data)) {
					break
				}
			}
			return nil
		}}
		sides = append(sides, all)
	}
	if doSub {
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		sub = &scanSide{name: "read/subscribe", subject: store + " store (runtime.Subscribe catch-up)", kind: KindCqrsgen, read: func(yield func(int) bool) error {
			for rec, err := range runtime.Subscribe(ctx, s, 0) {
				if err != nil {
					return err
				}
				if !yield(len(rec.Data)) || rec.Position >= head {
					break
				}
			}
			return nil
		}}
		sides = append(sides, sub)
	}
	// One untimed pass of each side first: the first scan of a store
	// fills its block cache (or, in memory, touches the log), and it
	// would fall on whichever side went first.
	for _, sd := range sides {
		if _, err := r.scan(ctx, sd.name, sd.subject+" (warm-up)", total, sd.read); err != nil {
			return err
		}
	}
	// Once the tables outgrow the block cache, every turn reads and
	// checks blocks again on both sides (their caches have the same
	// size): a cost both pay per block, which brings the ratio nearer
	// 1. The limit's row says when that happened.
	var missesBefore int64
	if limit != nil && limit.misses != nil {
		missesBefore = limit.misses()
	}
	for round := range readRounds {
		for j := range sides {
			sd := sides[(round+j)%len(sides)]
			secs, err := r.scan(ctx, sd.name, sd.subject, total, sd.read)
			if err != nil {
				return err
			}
			sd.turns = append(sd.turns, secs)
		}
	}
	row := func(sd *scanSide) Row {
		turns := slices.Clone(sd.turns)
		slices.Sort(turns)
		median := turns[len(turns)/2]
		var sum float64
		for _, t := range turns {
			sum += t
		}
		return Row{Case: sd.name, Group: "read", Subject: sd.subject, Kind: sd.kind, Ops: readRounds, Events: total * readRounds,
			Seconds: sum, EventsPerSec: float64(total) / median,
			Note: fmt.Sprintf("%d turns of %d events, alternating with the other rows of the case; events/s of the median turn (turns took %.1f-%.1f ms)",
				readRounds, total, turns[0]*1e3, turns[len(turns)-1]*1e3)}
	}
	var allRow, limitRow Row
	if limit != nil {
		limitRow = row(limit)
		if limit.misses != nil {
			limitRow.Note += fmt.Sprintf("; %d block cache misses in the timed turns (0: the tables fit in the cache)", limit.misses()-missesBefore)
		}
	}
	if all != nil {
		allRow = row(all)
		ratioRate(&allRow, limitRow)
		if limit != nil {
			r.add(limitRow)
		}
		r.add(allRow)
	}
	if sub != nil {
		subRow := row(sub)
		switch {
		case all != nil:
			ratioRate(&subRow, allRow)
		case limit != nil:
			ratioRate(&subRow, limitRow)
			limitRow.Case = "read/subscribe"
			r.add(limitRow)
		}
		r.add(subRow)
	}
	return nil
}

// scan times one pass of read, which yields each event's body size, checks
// that it saw total events and returns the seconds it took.
func (r *runner) scan(ctx context.Context, name, subject string, total int64, read func(yield func(int) bool) error) (float64, error) {
	var done atomic.Int64
	r.cfg.Progress.Begin(name+" "+subject, total, &done)
	start := time.Now()
	var bytes int64
	err := read(func(n int) bool {
		bytes += int64(n)
		done.Add(1)
		return ctx.Err() == nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("bench: %s %s: %w", name, subject, err)
	}
	if got := done.Load(); got != total {
		return 0, fmt.Errorf("bench: %s %s: read %d events, want %d", name, subject, got, total)
	}
	return elapsed.Seconds(), nil
}

// rawPebbleScan returns a scan of db's event records in key order that
// copies each value into one reused buffer (the least a reader must do).
func rawPebbleScan(db *pebbledb.DB) func(yield func(int) bool) error {
	var buf []byte
	return func(yield func(int) bool) error {
		it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return err
			}
			buf = append(buf[:0], v...)
			if !yield(len(buf)) {
				break
			}
		}
		if err := it.Error(); err != nil {
			_ = it.Close()
			return err
		}
		return it.Close()
	}
}

// rawMemoryScan returns a walk over a slice of total event bodies that
// copies each into one reused buffer: the floor under an in-memory store's
// ReadAll (no allocation, no envelope).
func rawMemoryScan(total int64) func(yield func(int) bool) error {
	data := samplePayload()
	log := make([][]byte, total)
	for i := range log {
		log[i] = append([]byte(nil), data...)
	}
	var buf []byte
	return func(yield func(int) bool) error {
		for _, b := range log {
			buf = append(buf[:0], b...)
			if !yield(len(buf)) {
				break
			}
		}
		return nil
	}
}
