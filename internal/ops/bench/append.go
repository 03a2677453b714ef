package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// appendCases measures every (batch, writers) combination on every store,
// each beside its limit row.
func (r *runner) appendCases(ctx context.Context) error {
	for _, batch := range appendBatches {
		for _, writers := range appendWriters {
			name := fmt.Sprintf("append/batch=%d/writers=%d", batch, writers)
			if !r.selected(name) {
				continue
			}
			if err := r.appendCase(ctx, name, batch, writers); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) appendCase(ctx context.Context, name string, batch, writers int) error {
	maxOps := max(int64(writers), r.lim.appendEvents/int64(batch))
	for _, store := range r.cfg.Stores {
		var limit Row
		var open []func() (*appendSide, error) // the limit side first, if any
		switch store {
		case "memory":
			open = append(open, func() (*appendSide, error) { return r.rawMemoryAppend(name, batch, writers), nil })
		case "pebble":
			open = append(open, func() (*appendSide, error) { return r.rawPebbleAppend(name, batch, writers) })
		case "postgres":
			// The pgbench-style limit first (the targets are read
			// against it), then one that groups rows across writers.
			open = append(open, func() (*appendSide, error) { return r.rawPostgresAppend(ctx, name, batch, writers) },
				func() (*appendSide, error) { return r.rawPostgresGroupedAppend(ctx, name, batch, writers) })
		default:
			if r.fsync != nil {
				limit = *r.fsync
			}
		}
		open = append(open,
			func() (*appendSide, error) { return r.storeAppend(ctx, name, store, batch, writers) },
			func() (*appendSide, error) { return r.repoAppend(ctx, name, store, batch, writers) })
		// A durable store's sides alternate (see runSides); in memory,
		// where no disk drifts, each side runs alone so that it does not
		// carry the others' live heaps.
		rounds := appendRounds
		if durable(store) == nil {
			rounds = 1
		}
		sides, err := r.runSides(ctx, open, rounds, writers, maxOps)
		if err != nil {
			return err
		}
		for _, sd := range sides {
			sd.res.fill(&sd.row, batch)
		}
		storeRow, repoRow := &sides[len(sides)-2].row, &sides[len(sides)-1].row
		if len(sides) >= 3 {
			limit = sides[0].row
		}
		ratioRate(storeRow, limit)
		ratioRate(repoRow, limit)
		if limit.Case == name {
			r.add(limit)
		}
		// Further limits (PostgreSQL's grouped one): rows of their own,
		// and the store's ratio to each in its note.
		for _, sd := range sides[1 : len(sides)-2] {
			r.add(sd.row)
			noteRatio(storeRow, sd.row)
			noteRatio(repoRow, sd.row)
		}
		r.add(*storeRow)
		r.add(*repoRow)
	}
	return nil
}

// noteRatio adds row's events/s ratio to a second limit to its note.
func noteRatio(row *Row, limit Row) {
	if limit.EventsPerSec <= 0 || row.EventsPerSec <= 0 {
		return
	}
	n := fmt.Sprintf("%.2fx %s", row.EventsPerSec/limit.EventsPerSec, limit.Subject)
	if row.Note != "" {
		n = row.Note + "; " + n
	}
	row.Note = n
}

// runSides opens the sides of an append case and gives each maxOps
// appends from `writers` goroutines. With one round each side is opened,
// run and closed in turn; with more, every side stays open and they take
// turns of a share of maxOps and of the time cap, the order rotated every
// round. Run one after the other, a few seconds each, the sides of a
// durable store met different disks: on a shared VM the fsync latency
// drifts by ±10% between runs, and single-event ratios swung by ±15% from
// run to run of the same build.
func (r *runner) runSides(ctx context.Context, open []func() (*appendSide, error), rounds, writers int, maxOps int64) ([]*appendSide, error) {
	var sides []*appendSide
	closeAll := func() error {
		var errs []error
		for _, sd := range sides {
			if sd.close != nil {
				errs = append(errs, sd.close())
				sd.close = nil
			}
		}
		return errors.Join(errs...)
	}
	turn := func(sd *appendSide, ops int64, capTime time.Duration) error {
		res, err := drive(ctx, r.cfg.Progress, sd.label, writers, ops, capTime, sd.op)
		sd.res.add(res)
		return err
	}
	for _, o := range open {
		sd, err := o()
		if err != nil {
			return nil, errors.Join(err, closeAll())
		}
		sides = append(sides, sd)
		if rounds == 1 {
			err := turn(sd, maxOps, r.lim.appendTime)
			if err := errors.Join(err, closeAll()); err != nil {
				return nil, err
			}
		}
	}
	if rounds > 1 {
		share := max(int64(writers), maxOps/int64(rounds))
		for round := range rounds {
			for j := range sides {
				if err := turn(sides[(round+j)%len(sides)], share, r.lim.appendTime/time.Duration(rounds)); err != nil {
					return nil, errors.Join(err, closeAll())
				}
			}
		}
	}
	return sides, closeAll()
}

// appendRounds is how many turns each side of a durable store's append
// case gets (see runSides).
const appendRounds = 4

// appendSide is one row of an append case: op appends one batch for
// writer w; res accumulates its turns.
type appendSide struct {
	label string // for the progress line
	row   Row    // filled from res once every turn is done
	op    func(ctx context.Context, w int) error
	close func() error // nil once closed
	res   driveResult
}

// repoAppend appends batches of Deposited events through the generated
// AccountRepository (encoding included; snapshots off, so that no append
// pays for a load), each writer to its own aggregate.
func (r *runner) repoAppend(ctx context.Context, name, store string, batch, writers int) (*appendSide, error) {
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return nil, err
	}
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	events := make([]account.AccountEvent, batch)
	for i := range events {
		events[i] = sampleDeposit
	}
	versions := make([]uint64, writers)
	ids := make([]string, writers)
	for w := range ids {
		ids[w] = fmt.Sprintf("writer-%d", w)
	}
	return &appendSide{
		label: name + " " + store + " repository",
		row:   Row{Case: name, Group: "append", Subject: store + " repository (generated, encoding included)", Kind: KindCqrsgen, Synced: durable(store), Batch: batch, Writers: writers},
		op: func(ctx context.Context, w int) error {
			v, err := repo.Append(ctx, ids[w], versions[w], events...)
			versions[w] = v
			return err
		},
		close: closeStore,
	}, nil
}

// storeAppend appends batches of store-level events, each writer to its own
// stream with the expected version it last saw.
func (r *runner) storeAppend(ctx context.Context, name, store string, batch, writers int) (*appendSide, error) {
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return nil, err
	}
	events := sampleBatch(batch)
	versions := make([]uint64, writers)
	streams := make([]runtime.StreamID, writers)
	for w := range streams {
		streams[w] = runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)}
	}
	return &appendSide{
		label: name + " " + store,
		row:   Row{Case: name, Group: "append", Subject: store + " store", Kind: KindCqrsgen, Synced: durable(store), Batch: batch, Writers: writers},
		op: func(ctx context.Context, w int) error {
			out, err := s.Append(ctx, runtime.AppendRequest{
				Stream:   streams[w],
				Expected: versions[w],
				Events:   events,
			})
			versions[w] = out.LastVersion
			return err
		},
		close: closeStore,
	}, nil
}

// recordSize is the size of the value the Pebble store writes for one
// event of the sample stream near the given version and position (its
// record envelope: header fields, name, body and a 4-byte checksum).
func recordSize(stream runtime.StreamID, version, pos uint64, name string, data []byte) int {
	uv := func(v uint64) int { return len(binary.AppendUvarint(nil, v)) }
	return 1 + uv(uint64(len(stream.Type))) + len(stream.Type) + uv(uint64(len(stream.ID))) + len(stream.ID) +
		uv(version) + uv(pos) + uv(uint64(len(name))) + len(name) + uv(1) +
		5 + 4 + 1 + uv(uint64(len(data))) + len(data) + 4
}

// openRawPebble opens a bare Pebble database with the Pebble store's
// default options (cache, memtable size, format).
func (r *runner) openRawPebble() (*pebbledb.DB, func(), error) {
	dir := r.tempDir("rawpebble")
	db, err := openPebbleDir(dir, slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return nil, nil, err
	}
	return db, func() {
		_ = db.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// quietLogger routes Pebble's messages to a slog logger.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) { q.l.Info(fmt.Sprintf(format, args...)) }
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...)) // Pebble's contract: Fatalf does not return
}

// rawKeys appends to b the two keys and values the Pebble store writes for
// one event: p<pos:8> → record, s<stream><version:8> → pos:8.
func rawKeys(b *pebbledb.Batch, streamKey []byte, version, pos uint64, value []byte, kbuf []byte) []byte {
	kbuf = append(kbuf[:0], 'p')
	kbuf = binary.BigEndian.AppendUint64(kbuf, pos)
	_ = b.Set(kbuf, value, nil)
	kbuf = append(kbuf[:0], 's')
	kbuf = append(kbuf, streamKey...)
	kbuf = binary.BigEndian.AppendUint64(kbuf, version)
	var pv [8]byte
	binary.BigEndian.PutUint64(pv[:], pos)
	_ = b.Set(kbuf, pv[:], nil)
	return kbuf
}

func streamKeyOf(s runtime.StreamID) []byte {
	b := binary.AppendUvarint(nil, uint64(len(s.Type)))
	b = append(b, s.Type...)
	b = binary.AppendUvarint(b, uint64(len(s.ID)))
	return append(b, s.ID...)
}

// rawPebbleAppend writes the same keys and bytes as the Pebble store, in
// the same batch sizes, each writer committing its own pebble.Sync batch.
// Positions come from an atomic counter: no ordering, no version check.
func (r *runner) rawPebbleAppend(name string, batch, writers int) (*appendSide, error) {
	db, closeDB, err := r.openRawPebble()
	if err != nil {
		return nil, err
	}
	data := samplePayload()
	var pos atomic.Uint64
	type wstate struct {
		streamKey []byte
		version   uint64
		value     []byte
		kbuf      []byte
	}
	ws := make([]*wstate, writers)
	for w := range ws {
		st := runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)}
		ws[w] = &wstate{streamKey: streamKeyOf(st), value: make([]byte, recordSize(st, 1000, 100_000, eventName, data))}
		copy(ws[w].value[len(ws[w].value)-len(data)-4:], data)
	}
	return &appendSide{
		label: name + " raw pebble",
		row:   Row{Case: name, Group: "append", Subject: "raw pebble", Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers},
		op: func(_ context.Context, w int) error {
			st := ws[w]
			b := db.NewBatch()
			first := pos.Add(uint64(batch)) - uint64(batch)
			for i := range batch {
				st.version++
				st.kbuf = rawKeys(b, st.streamKey, st.version, first+uint64(i)+1, st.value, st.kbuf)
			}
			err := b.Commit(pebbledb.Sync)
			_ = b.Close()
			return err
		},
		close: func() error { closeDB(); return nil },
	}, nil
}

// rawMemory is the floor under an in-memory store: copy each event's
// bytes into one slice under a mutex and index it by stream.
type rawMemory struct {
	mu      sync.Mutex
	log     [][]byte
	streams map[string][]uint64
}

// rawMemoryAppend measures rawMemory with the same batches and writers.
func (r *runner) rawMemoryAppend(name string, batch, writers int) *appendSide {
	m := &rawMemory{streams: make(map[string][]uint64)}
	data := samplePayload()
	ids := make([]string, writers)
	for w := range ids {
		ids[w] = fmt.Sprintf("writer-%d", w)
	}
	return &appendSide{
		label: name + " raw memory",
		row:   Row{Case: name, Group: "append", Subject: "raw memory (mutex + slice)", Kind: KindLimit, Batch: batch, Writers: writers},
		op: func(_ context.Context, w int) error {
			copies := make([][]byte, batch)
			for i := range copies {
				copies[i] = append([]byte(nil), data...)
			}
			m.mu.Lock()
			idx := m.streams[ids[w]]
			for _, c := range copies {
				m.log = append(m.log, c)
				idx = append(idx, uint64(len(m.log)))
			}
			m.streams[ids[w]] = idx
			m.mu.Unlock()
			return nil
		},
		close: func() error { return nil },
	}
}
