package bench

import (
	"context"
	"fmt"
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
		s, closeStore, err := r.openStore(ctx, store)
		if err != nil {
			return err
		}
		err = r.readStore(ctx, store, s, r.selected(all), r.selected(sub))
		if cerr := closeStore(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
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

func (r *runner) readStore(ctx context.Context, store string, s runtime.Store, doAll, doSub bool) error {
	total := r.lim.logEvents
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
	var limit Row
	switch store {
	case "pebble":
		if limit, err = r.rawPebbleScan(ctx, total); err != nil {
			return err
		}
	case "memory":
		limit = r.rawMemoryScan(total)
	}
	var allRow Row
	if doAll {
		allRow, err = r.scan(ctx, "read/all", store+" store (ReadAll)", total, func(yield func(int) bool) error {
			for rec, err := range s.ReadAll(ctx, 0) {
				if err != nil {
					return err
				}
				if !yield(len(rec.Data)) {
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		ratioRate(&allRow, limit)
		if limit.Case != "" {
			r.add(limit)
		}
		r.add(allRow)
	}
	if doSub {
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		row, err := r.scan(ctx, "read/subscribe", store+" store (runtime.Subscribe catch-up)", total, func(yield func(int) bool) error {
			for rec, err := range runtime.Subscribe(ctx, s, 0) {
				if err != nil {
					return err
				}
				if !yield(len(rec.Data)) || rec.Position >= head {
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch {
		case doAll:
			ratioRate(&row, allRow)
		case limit.Case != "":
			ratioRate(&row, limit)
			limit.Case = "read/subscribe"
			r.add(limit)
		}
		r.add(row)
	}
	return nil
}

// scan times one pass of read, which yields each event's body size, and
// checks that it saw total events.
func (r *runner) scan(ctx context.Context, name, subject string, total int64, read func(yield func(int) bool) error) (Row, error) {
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
		return Row{}, fmt.Errorf("bench: %s %s: %w", name, subject, err)
	}
	if got := done.Load(); got != total {
		return Row{}, fmt.Errorf("bench: %s %s: read %d events, want %d", name, subject, got, total)
	}
	row := Row{Case: name, Group: "read", Subject: subject, Kind: KindCqrsgen, Ops: 1, Events: total, Seconds: elapsed.Seconds()}
	if row.Seconds > 0 {
		row.EventsPerSec = float64(total) / row.Seconds
	}
	return row, nil
}

// rawPebbleScan fills a raw Pebble database with the same keys and bytes
// and scans the event records in key order, copying each value.
func (r *runner) rawPebbleScan(ctx context.Context, total int64) (Row, error) {
	db, closeDB, err := r.openRawPebble()
	if err != nil {
		return Row{}, err
	}
	defer closeDB()
	data := samplePayload()
	var pos atomic.Uint64
	err = populateLog(ctx, total, func(_ context.Context, stream int, version uint64, n int) error {
		st := runtime.StreamID{Type: streamType, ID: fmt.Sprintf("log-%d", stream)}
		sk := streamKeyOf(st)
		value := make([]byte, recordSize(st, version, pos.Load(), eventName, data))
		b := db.NewBatch()
		first := pos.Add(uint64(n)) - uint64(n)
		var kbuf []byte
		for j := range n {
			kbuf = rawKeys(b, sk, version+uint64(j)+1, first+uint64(j)+1, value, kbuf)
		}
		err := b.Commit(pebbledb.Sync)
		_ = b.Close()
		return err
	})
	if err != nil {
		return Row{}, fmt.Errorf("bench: populating raw pebble for reads: %w", err)
	}
	row, err := r.scan(ctx, "read/all", "raw pebble (scan event keys)", total, func(yield func(int) bool) error {
		it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}})
		if err != nil {
			return err
		}
		var buf []byte
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
	})
	row.Kind = KindLimit
	return row, err
}

// rawMemoryScan walks a slice of total event bodies, copying each: the
// floor under an in-memory store's ReadAll.
func (r *runner) rawMemoryScan(total int64) Row {
	data := samplePayload()
	log := make([][]byte, total)
	for i := range log {
		log[i] = append([]byte(nil), data...)
	}
	row, _ := r.scan(context.Background(), "read/all", "raw memory (slice scan + copy)", total, func(yield func(int) bool) error {
		for _, b := range log {
			c := append([]byte(nil), b...)
			if !yield(len(c)) {
				break
			}
		}
		return nil
	})
	row.Kind = KindLimit
	return row
}
