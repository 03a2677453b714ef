package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// readStore fills a store with aggs streams of size events each, written
// 100 events per append between appends of as many noise events, and
// flushes it so that reads go through tables and the block cache.
func readStore(b *testing.B, size, aggs int) (*Store, []runtime.StreamID) {
	b.Helper()
	return readStoreOf(b, "Account", size, aggs)
}

// readStoreOf is readStore with streams of type typ.
func readStoreOf(b *testing.B, typ string, size, aggs int) (*Store, []runtime.StreamID) {
	b.Helper()
	s := openT(b, b.TempDir(), WithNoSync(0))
	streams := make([]runtime.StreamID, aggs)
	for i := range streams {
		streams[i] = runtime.StreamID{Type: typ, ID: fmt.Sprintf("acc-%d", i)}
		fillPlain(b, s, streams[i], size)
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	return s, streams
}

// rawReadStream is the least a stream read costs on the store's layout:
// a bounded iterator over the stream's index keys and, per entry, a second
// iterator moved to the record (a Next when the record follows the
// previous one, as the records of one append do, else a seek, as the
// store does), whose value is copied into buf.
func rawReadStream(db *pebbledb.DB, st runtime.StreamID, buf []byte) (int, []byte, error) {
	prefix := streamIndexPrefix(nil, st)
	idx, err := db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, buf, err
	}
	var recs *pebbledb.Iterator
	var key [9]byte
	key[0] = tagEvent
	n := 0
	for ok := idx.First(); ok; ok = idx.Next() {
		v, err := idx.ValueAndErr()
		if err != nil {
			return 0, buf, err
		}
		if recs == nil {
			if recs, err = db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{tagEvent}, UpperBound: []byte{tagEvent + 1}}); err != nil {
				return 0, buf, err
			}
		}
		prev := binary.BigEndian.Uint64(key[1:])
		copy(key[1:], v)
		if prev == 0 || prev+1 != binary.BigEndian.Uint64(v) || !recs.Next() || !bytes.Equal(recs.Key(), key[:]) {
			if !recs.SeekGE(key[:]) || !bytes.Equal(recs.Key(), key[:]) {
				return 0, buf, fmt.Errorf("record %x missing", key)
			}
		}
		rv, err := recs.ValueAndErr()
		if err != nil {
			return 0, buf, err
		}
		buf = append(buf[:0], rv...)
		n++
	}
	err = idx.Close()
	if recs != nil {
		err = errorsJoin(err, recs.Close())
	}
	return n, buf, err
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// BenchmarkReadStreamPaired reads whole streams of 10, 100 and 1,000
// events through ReadStream, through rawReadStream and through
// VisitStream (Load's read, without decoding) on the same database, the
// three in rotated turns, and reports each side's p50 (and p99 for
// ReadStream and raw) and the ratios of the p50s (raw/store: 1 means the
// store reads at raw Pebble's speed).
func BenchmarkReadStreamPaired(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			aggs := max(10, 20_000/size)
			s, streams := readStore(b, size, aggs)
			defer s.Close()
			ctx := context.Background()
			store := make([]time.Duration, 0, b.N)
			raw := make([]time.Duration, 0, b.N)
			visit := make([]time.Duration, 0, b.N)
			var buf []byte
			b.ResetTimer()
			for i := range b.N {
				st := streams[i%aggs]
				readStore := func() {
					t0 := time.Now()
					n := 0
					for _, err := range s.ReadStream(ctx, st, 0) {
						if err != nil {
							b.Fatal(err)
						}
						n++
					}
					store = append(store, time.Since(t0))
					if n != size {
						b.Fatalf("store read %d events, want %d", n, size)
					}
				}
				readRaw := func() {
					t0 := time.Now()
					n, out, err := rawReadStream(s.db, st, buf)
					raw = append(raw, time.Since(t0))
					buf = out
					if err != nil || n != size {
						b.Fatalf("raw read %d events (%v), want %d", n, err, size)
					}
				}
				readVisit := func() {
					t0 := time.Now()
					n := 0
					err := s.VisitStream(ctx, st, 0, func(e *runtime.EventView) error { n += len(e.Data); return nil })
					visit = append(visit, time.Since(t0))
					if err != nil || n == 0 {
						b.Fatalf("visit: %d bytes, %v", n, err)
					}
				}
				sides := []func(){readStore, readRaw, readVisit}
				for j := range sides {
					sides[(i+j)%len(sides)]()
				}
			}
			b.StopTimer()
			reportPaired(b, store, raw)
			slices.Sort(visit)
			vp50 := float64(visit[len(visit)/2].Nanoseconds()) / 1e3
			b.ReportMetric(vp50, "visit-p50-µs")
			b.ReportMetric(float64(raw[len(raw)/2].Nanoseconds())/1e3/vp50, "visit-x-raw")
		})
	}
}

// reportPaired reports p50 and p99 of the store's and the raw side's
// durations and raw-p50/store-p50.
func reportPaired(b *testing.B, store, raw []time.Duration) {
	p := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3
	}
	sp50, rp50 := p(store, 0.5), p(raw, 0.5)
	b.ReportMetric(sp50, "store-p50-µs")
	b.ReportMetric(p(store, 0.99), "store-p99-µs")
	b.ReportMetric(rp50, "raw-p50-µs")
	b.ReportMetric(p(raw, 0.99), "raw-p99-µs")
	b.ReportMetric(rp50/sp50, "x-raw")
}

// fillPlain is fill with events like the bank example's Deposited: a
// 28-byte body, no metadata.
func fillPlain(b *testing.B, s *Store, stream runtime.StreamID, events int) {
	ctx := context.Background()
	body := []byte("\x82\xa6Amount\xcd\x30\x39\xa9Reference\xb0bench-ref-000042")
	for done := 0; done < events; {
		n := min(100, events-done)
		evs := make([]runtime.EventData, n)
		for i := range evs {
			evs[i] = runtime.EventData{Name: "bank.account.deposited", Schema: 1, Data: body}
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: stream, Expected: runtime.AnyVersion, Events: evs}); err != nil {
			b.Fatal(err)
		}
		other := runtime.StreamID{Type: "Noise", ID: fmt.Sprint(done)}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: evs}); err != nil {
			b.Fatal(err)
		}
		done += n
	}
}

// BenchmarkReadAllPaired scans a flushed log of 100,000 events through
// ReadAll and, in turns rotated on the same database, through a raw
// iterator over the event keys that copies each value into one buffer
// (the limit cqrsbench's read/all row uses) and through the same raw scan
// that also checks each value's checksum (the floor under any ReadAll that
// keeps the per-record check); it reports the three rates, store/raw and
// store/raw+checksum.
func BenchmarkReadAllPaired(b *testing.B) {
	const total = 100_000
	s, _ := readStore(b, 500, total/1000)
	defer s.Close()
	ctx := context.Background()
	var storeTime, rawTime, sumTime time.Duration
	var buf []byte
	storeScan := func() {
		t0 := time.Now()
		n := 0
		for _, err := range s.ReadAll(ctx, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		storeTime += time.Since(t0)
		if n != total {
			b.Fatalf("store read %d events, want %d", n, total)
		}
	}
	rawScan := func(check bool, into *time.Duration) {
		t0 := time.Now()
		it, err := s.db.NewIter(&eventBounds)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				b.Fatal(err)
			}
			if check {
				if _, err := unseal(v); err != nil {
					b.Fatal(err)
				}
			}
			buf = append(buf[:0], v...)
			n++
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
		*into += time.Since(t0)
		if n != total {
			b.Fatalf("raw read %d events, want %d", n, total)
		}
	}
	sides := []func(){storeScan, func() { rawScan(false, &rawTime) }, func() { rawScan(true, &sumTime) }}
	b.ResetTimer()
	for i := range b.N {
		for j := range sides {
			sides[(i+j)%len(sides)]()
		}
	}
	b.StopTimer()
	sr := float64(b.N*total) / storeTime.Seconds()
	rr := float64(b.N*total) / rawTime.Seconds()
	cr := float64(b.N*total) / sumTime.Seconds()
	b.ReportMetric(sr, "store-events/s")
	b.ReportMetric(rr, "raw-events/s")
	b.ReportMetric(cr, "raw+checksum-events/s")
	b.ReportMetric(sr/rr, "x-raw")
	b.ReportMetric(sr/cr, "x-raw+checksum")
}

// BenchmarkVerify verifies a flushed store of 100,000 events (500-event
// streams written 100 events per append between as many noise events) the
// way Verify does (one walk comparing digests) and, for comparison, with a
// lookup per event and per index entry (the walk Verify falls back to when
// the digests differ).
func BenchmarkVerify(b *testing.B) {
	const total = 100_000
	s, _ := readStore(b, 500, total/1000)
	defer s.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		cross bool
	}{{"digest", false}, {"lookups", true}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				rep, _, err := verifyWalk(ctx, s.db, tc.cross)
				if err != nil || len(rep.Problems) != 0 || rep.Events != total {
					b.Fatalf("%v %+v", err, rep.Problems)
				}
			}
			b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkDiskPerEvent writes 1,000,000 events like the bank example's
// Deposited (a 44-byte body, no metadata) over 1,000 streams, 100 per append, then reports the
// bytes on disk per event as Stats sees them right after the ingest
// (tables, WAL and all) and, after a flush and a full compaction, the
// table bytes per event.
func BenchmarkDiskPerEvent(b *testing.B) {
	const total, streams, batch = 1_000_000, 1000, 100
	// Bodies like the bank example's Deposited in MessagePack, 44 bytes,
	// each with its own amount and reference (as compressible as real
	// ones, unlike a repeated body).
	evs := make([][]runtime.EventData, total/batch)
	for i := range evs {
		evs[i] = make([]runtime.EventData, batch)
		for j := range evs[i] {
			n := i*batch + j
			body := fmt.Appendf([]byte("\x82\xa6Amount\xce"), "%c%c%c%c\xa9Reference\xb0bench-ref-%06d", byte(n>>24), byte(n>>16), byte(n>>8), byte(n), n%1_000_000)
			evs[i][j] = runtime.EventData{Name: "bank.account.deposited", Schema: 1, Data: body}
		}
	}
	ctx := context.Background()
	for range b.N {
		s := openT(b, b.TempDir(), WithNoSync(0))
		for i := range total / batch {
			st := runtime.StreamID{Type: "bank.account", ID: fmt.Sprint("log-", i%streams)}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs[i]}); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.DiskBytes)/total, "disk-bytes/event")
		if err := s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
			b.Fatal(err)
		}
		if st, err = s.Stats(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Extra["table_bytes"])/total, "table-bytes/event")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestCompaction ingests 5,000,000 events (44-byte bodies, 100
// per synced append, 16 goroutines, 16,000 streams) with Pebble allowing
// one or two concurrent compactions, then verifies the store. It reports
// the ingest rate, the peaks of L0 files, L0 sublevels and read
// amplification sampled every 500,000 events, the compactions, the
// estimated compaction debt and table bytes at the end, and Verify's rate.
// Run it with -benchtime 1x: one iteration takes tens of seconds.
func BenchmarkIngestCompaction(b *testing.B) {
	const total, batch, writers = 5_000_000, 100, 16
	for _, upper := range []int{1, 2} {
		b.Run(fmt.Sprintf("compactions=%d", upper), func(b *testing.B) {
			for range b.N {
				ingestCompaction(b, total, batch, writers, upper)
			}
		})
	}
}

func ingestCompaction(b *testing.B, total, batch, writers, upper int) {
	ctx := context.Background()
	s := openT(b, b.TempDir(), WithPebbleOptions(func(o *pebbledb.Options) {
		o.CompactionConcurrencyRange = func() (int, int) { return 1, upper }
	}))
	defer s.Close()
	var next atomic.Int64
	var peakL0, peakSub, peakAmp atomic.Int64
	sample := func() {
		st, err := s.Stats(ctx)
		if err != nil {
			return
		}
		for _, p := range []struct {
			peak *atomic.Int64
			key  string
		}{{&peakL0, "l0_files"}, {&peakSub, "l0_sublevels"}, {&peakAmp, "read_amp"}} {
			if v := st.Extra[p.key]; v > p.peak.Load() {
				p.peak.Store(v)
			}
		}
	}
	appends := int64(total / batch)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= appends {
					return
				}
				evs := make([]runtime.EventData, batch)
				for j := range evs {
					n := int(i)*batch + j
					body := fmt.Appendf([]byte("\x82\xa6Amount\xce"), "%c%c%c%c\xa9Reference\xb0bench-ref-%06d", byte(n>>24), byte(n>>16), byte(n>>8), byte(n), n%1_000_000)
					evs[j] = runtime.EventData{Name: "bank.account.deposited", Schema: 1, Data: body}
				}
				st := runtime.StreamID{Type: "bank.account", ID: fmt.Sprint("log-", int(i)%1000*writers+w)}
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs}); err != nil {
					b.Error(err)
					return
				}
				if (i+1)%(500_000/int64(batch)) == 0 {
					sample()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	sample()
	st, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Problems) != 0 || rep.Events != uint64(total) {
		b.Fatalf("verify: %v, %d problems, %d events", err, len(rep.Problems), rep.Events)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(total)/time.Since(t1).Seconds(), "verify-events/s")
	b.ReportMetric(float64(peakL0.Load()), "peak-l0-files")
	b.ReportMetric(float64(peakSub.Load()), "peak-l0-sublevels")
	b.ReportMetric(float64(peakAmp.Load()), "peak-read-amp")
	b.ReportMetric(float64(st.Extra["compactions"]), "compactions")
	b.ReportMetric(float64(st.Extra["compaction_debt_bytes"])/(1<<20), "debt-MiB")
	b.ReportMetric(float64(st.Extra["table_bytes"])/(1<<20), "table-MiB")
}

// BenchmarkRecordCost splits what the store does per record beyond raw
// Pebble's work, on one record like the bank example's Deposited (a 28-byte
// body, no metadata): the checksum alone, ReadStream's decode (checksum,
// parse, copy into the read's slab, the Record), VisitStream's view
// (checksum, parse, no copy), and the raw limit's copy of the value into a
// reused buffer.
func BenchmarkRecordCost(b *testing.B) {
	st := runtime.StreamID{Type: "Account", ID: "acc-1"}
	rec := runtime.Record{EventID: runtime.NewEventID(), Stream: st, Version: 7, Position: 1 << 20,
		Name: "bank.account.deposited", Schema: 1, Time: time.Now(),
		Data: []byte("\x82\xa6Amount\xcd\x30\x39\xa9Reference\xb0bench-ref-000042")}
	enc := encodeRecord(nil, &rec, nil)
	b.Run("checksum", func(b *testing.B) {
		for range b.N {
			if _, err := unseal(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readstream-decode", func(b *testing.B) {
		b.ReportAllocs()
		var sl slab
		for range b.N {
			if _, err := decodeRecordOf(enc, &st, &sl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("visit-view", func(b *testing.B) {
		b.ReportAllocs()
		sk := appendStreamKey(nil, st)
		var v runtime.EventView
		for range b.N {
			if err := viewRecord(&v, enc, sk, 7, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-copy", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf = append(buf[:0], enc...)
		}
	})
}
