package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"sync"
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
			// Raw Pebble as it ships first (the targets are read against
			// it), then the same without recycling write-ahead logs, which
			// shows what recycling saves (see rawPebbleAppend).
			open = append(open, func() (*appendSide, error) { return r.rawPebbleAppend(name, batch, writers, true) },
				func() (*appendSide, error) { return r.rawPebbleAppend(name, batch, writers, false) })
		case "postgres":
			// The pgbench-style limit first (the targets are read
			// against it), then one that groups rows across writers and,
			// for batches, one whose client encodes in binary.
			open = append(open, func() (*appendSide, error) { return r.rawPostgresAppend(ctx, name, batch, writers) },
				func() (*appendSide, error) { return r.rawPostgresGroupedAppend(ctx, name, batch, writers) })
			if batch > 1 {
				open = append(open, func() (*appendSide, error) { return r.rawPostgresBinaryAppend(ctx, name, batch, writers) })
			}
		default:
			if r.fsync != nil {
				limit = *r.fsync
			}
		}
		open = append(open,
			func() (*appendSide, error) { return r.storeAppend(ctx, name, store, batch, writers) },
			func() (*appendSide, error) { return r.repoAppend(ctx, name, store, batch, writers) })
		// Every store's sides alternate (see runSides). In memory they used
		// to run one after the other, each alone, so that none carried the
		// others' live heaps; but the machine's speed drifts during a run
		// as much as a disk's, and the memory rows swung past their limit
		// (issue 18). Alternated, each side's turns meet the same drift and
		// the same three heaps.
		//
		// Short turns are at the mercy of the shared machine: a stall of a
		// few tens of milliseconds ruins one. Memory's rows (a million
		// events in well under a second) and the 100-event rows (10,000
		// appends, 39 per writer at 256 writers) take twice the events.
		ops := maxOps
		if store == "memory" || batch > 1 {
			ops *= 2
		}
		sides, err := r.runSides(ctx, open, appendTurns(ops, writers), writers, ops, r.lim.appendTime)
		if err != nil {
			return err
		}
		for _, sd := range sides {
			sd.res.fill(&sd.row, batch)
			sd.row.Note = joinNote(sd.row.Note, sd.noted)
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
		// Further limits (Pebble's without log recycling, PostgreSQL's
		// grouped and binary ones): rows of their own,
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
	row.Note = joinNote(row.Note, fmt.Sprintf("%.2fx %s", row.EventsPerSec/limit.EventsPerSec, limit.Subject))
}

// runSides opens the sides of a case and gives each maxOps operations
// from `writers` goroutines, within capTime. With one round each side is
// opened, run and closed in turn; with more, every side stays open and
// they take turns of a share of maxOps and of capTime, the order rotated
// every round. Run one after the other, a few seconds each, the sides of a
// durable store met different disks: on a shared VM the fsync latency
// drifts by ±10% between runs, and single-event ratios swung by ±15% from
// run to run of the same build.
func (r *runner) runSides(ctx context.Context, open []func() (*appendSide, error), rounds, writers int, maxOps int64, capTime time.Duration) ([]*appendSide, error) {
	var sides []*appendSide
	closeAll := func() error {
		var errs []error
		for _, sd := range sides {
			if sd.close != nil {
				if sd.note != nil {
					sd.noted = sd.note()
				}
				errs = append(errs, sd.close())
				sd.close = nil
			}
		}
		return errors.Join(errs...)
	}
	turn := func(sd *appendSide, round int, ops int64, capTime time.Duration) error {
		tl := r.beginTurn()
		res, err := drive(ctx, r.cfg.Progress, sd.label, writers, ops, capTime, sd.op)
		tl.end(sd, round, res)
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
			quiesce()
			err := turn(sd, 0, maxOps, capTime)
			if err := errors.Join(err, closeAll()); err != nil {
				return nil, err
			}
		}
	}
	if rounds > 1 {
		quiesce()
		share := max(int64(writers), maxOps/int64(rounds))
		for round := range rounds {
			for j := range sides {
				if err := turn(sides[(round+j)%len(sides)], round, share, capTime/time.Duration(rounds)); err != nil {
					return nil, errors.Join(err, closeAll())
				}
			}
		}
	}
	return sides, closeAll()
}

// quiesce is called before a case's first turn, once its sides are open,
// so that the first turn (always the limit's) starts from the state the
// later ones meet: no garbage of earlier cases left to collect (in a full
// run the memory cases leave about 1 GiB, which the turn log showed still
// on the heap through the Pebble cases, its collection falling on
// whichever turn reached the heap goal), and no dirty pages of earlier
// cases (their removed data directories) or of the sides just opened
// (new directories, logs and manifests) written back under the first
// turn's fsyncs. An -only run of one case starts with neither.
func quiesce() {
	goruntime.GC()
	syncDisks()
}

// appendRounds is how many turns each side of an append case gets (see
// runSides). Another process's burst of fsyncs on the shared disk lasts
// about a turn of 4 (1.25 s of 5): single-writer Pebble ratios spread over
// 0.65x–1.31x with 4 or 8 turns, 0.84x–1.02x with 16 (docs/benchmarks-history.md).
const appendRounds = 16

// appendTurns is how many turns an append case of ops appends from
// `writers` goroutines takes: appendRounds, fewer when a turn would give a
// writer fewer than 8 appends (a turn then measures goroutines starting
// and stopping, not appends: the quick run's 100-event rows), never fewer
// than 2.
func appendTurns(ops int64, writers int) int {
	return int(max(2, min(appendRounds, ops/int64(8*writers))))
}

// appendSide is one row of an append case: op appends one batch for
// writer w; res accumulates its turns.
type appendSide struct {
	label string // for the progress line
	row   Row    // filled from res once every turn is done
	op    func(ctx context.Context, w int) error
	close func() error // nil once closed
	res   driveResult
	// note, when set, is called once every turn is done, before the
	// side is closed; noted holds what it returned, for the row's note.
	note  func() string
	noted string
	// state, when set, describes the side's database (its Pebble
	// metrics) for the turn log (Config.TurnLog).
	state func() string
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
		note:  commitsNote(ctx, s, batch),
		state: r.turnState(ctx, s),
	}, nil
}

// commitsNote returns a note of the appends per commit of a store whose
// Stats count its commits (Extra["commits"]: the Pebble store), beside
// which the grouped limit's own figure can be read; nil for other stores.
// Called once every turn is done, while the store is still open.
func commitsNote(ctx context.Context, s runtime.Store, batch int) func() string {
	st, err := s.Stats(ctx)
	if _, ok := st.Extra["commits"]; err != nil || !ok {
		return nil
	}
	return func() string {
		st, err := s.Stats(ctx)
		if c := st.Extra["commits"]; err == nil && c > 0 {
			return fmt.Sprintf("%.1f appends per synced commit", float64(st.Events)/float64(batch)/float64(c))
		}
		return ""
	}
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
		note:  commitsNote(ctx, s, batch),
		state: r.turnState(ctx, s),
	}, nil
}

// recordSize is the size of the value the Pebble store writes for one
// event of stream (its record envelope 3: format byte, event id, stream
// type and id, name, schema, time, metadata count, body, and the tail of
// version, position and checksum), the time's nanoseconds counted at their
// widest (5 bytes), so that the limit writes at least the store's bytes.
// TestRawPebbleAppendWritesTheStoresKeys checks it against the store.
func recordSize(stream runtime.StreamID, name string, data []byte) int {
	uv := func(v uint64) int { return len(binary.AppendUvarint(nil, v)) }
	str := func(n int) int { return uv(uint64(n)) + n }
	const unixSeconds = 5 // a zig-zag varint of today's Unix time
	return 1 + 16 + str(len(stream.Type)) + str(len(stream.ID)) + str(len(name)) + uv(1) +
		unixSeconds + 5 + uv(0) + str(len(data)) + 8 + 8 + 4
}

// openRawPebble opens a bare Pebble database with the Pebble store's
// default options (cache, memtable size, format); unless recycle is set,
// obsolete write-ahead logs are deleted instead of recycled, as the store
// did before 2026-12-06 (noRecycleCleaner).
func (r *runner) openRawPebble(recycle bool) (*pebbledb.DB, func(), error) {
	dir := r.tempDir("rawpebble")
	db, err := openPebbleDir(dir, slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn})), func(o *pebbledb.Options) {
		if !recycle {
			o.Cleaner = noRecycleCleaner{}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return db, func() {
		_ = db.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// noRecycleCleaner deletes obsolete files and stops Pebble from recycling
// write-ahead logs, as the Pebble store's cleaner did before it let Pebble
// recycle and purged the logs at hard deletes instead (backends/pebble,
// cleaner.go). Pebble recycles logs unless its Cleaner implements the
// unexported base.NeedsFileContents, which only ArchiveCleaner does;
// embedded one level below DeleteCleaner, it lends that method alone.
// TestRawPebbleRecycling checks both settings.
type noRecycleCleaner struct {
	pebbledb.DeleteCleaner
	archiveMarker
}

type archiveMarker struct{ pebbledb.ArchiveCleaner }

func (noRecycleCleaner) String() string { return "delete, no log recycling" }

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

func streamKeyOf(s runtime.StreamID) []byte {
	b := binary.AppendUvarint(nil, uint64(len(s.Type)))
	b = append(b, s.Type...)
	b = binary.AppendUvarint(b, uint64(len(s.ID)))
	return append(b, s.ID...)
}

// rawPebbleAppend writes the same keys and bytes as the Pebble store, in
// the same batch sizes, through rawGroupCommit: concurrent writers' batches
// merged into one synced commit, as the store merges concurrent appends.
// Each writer counts its own versions: no ordering, no version check.
//
// With recycle, Pebble reuses the logs of flushed memtables for new ones,
// as it does by default: a sync then writes into blocks the file already
// has, where a new log's syncs also commit its growing size and extents
// to the filesystem's journal. The store recycles too (a hard delete
// removes the logs instead, see backends/pebble/cleaner.go); it turned
// recycling off before 2026-12-06, when every sync of its WAL after the
// first flush was of the second kind. The row without recycling shows what
// recycling saves, and what a store that stopped recycling would lose.
func (r *runner) rawPebbleAppend(name string, batch, writers int, recycle bool) (*appendSide, error) {
	db, closeDB, err := r.openRawPebble(recycle)
	if err != nil {
		return nil, err
	}
	g := newRawGroupCommit(db)
	ws := rawAppendWrites(writers, batch)
	row := Row{Case: name, Group: "append", Subject: "raw pebble (writers' batches grouped into one synced commit)", Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
	label := name + " raw pebble"
	if !recycle {
		row.Subject = "raw pebble, logs not recycled (grouped as above; obsolete WAL files deleted: what recycling saves)"
		label += " no recycling"
	}
	return &appendSide{
		label: label,
		row:   row,
		op: func(_ context.Context, w int) error {
			err := g.write(ws[w])
			ws[w].version += uint64(batch)
			return err
		},
		close: func() error { g.close(); closeDB(); return nil },
		note:  g.note,
		state: r.turnStateRaw(db),
	}, nil
}

// rawAppendWrites returns each writer's request of the raw Pebble append
// limit: the sample event's record value, sized as the store's, on the
// writer's own stream.
func rawAppendWrites(writers, batch int) []*rawWrite {
	data := samplePayload()
	ws := make([]*rawWrite, writers)
	for w := range ws {
		st := runtime.StreamID{Type: streamType, ID: fmt.Sprintf("writer-%d", w)}
		ws[w] = newRawWrite()
		ws[w].sk, ws[w].n = streamKeyOf(st), batch
		ws[w].value = make([]byte, recordSize(st, eventName, data))
		copy(ws[w].value[len(ws[w].value)-len(data)-20:], data)
	}
	return ws
}

// rawMemory is the floor under the memory store: each event's bytes
// copied into an arena carved in 32 KiB blocks (one per writer, so the
// copies are made before the lock), then, under one mutex, each body kept
// in a log of fixed-size chunks (never moved, as the store's are) and its
// position appended to its stream's index. The store does the same and
// more (an entry with the stream, version, name, time and id; the version
// check; the copies under its lock). Until issue 18 the limit allocated
// each event's bytes on its own and grew one slice of all of them,
// copying it as it grew: the store beat that "limit" by up to 1.3x.
type rawMemory struct {
	mu      sync.Mutex
	chunks  []*[rawMemoryChunk][]byte
	head    uint64
	streams map[string]*[]uint64
}

// rawMemoryWriter is one writer's arena and scratch list of copies.
type rawMemoryWriter struct {
	arena  []byte
	copies [][]byte
}

// The memory store's sizes (backends/memory): 256 entries a chunk, body
// arenas of 32 KiB.
const (
	rawMemoryChunk = 256
	rawMemoryArena = 32 << 10
)

func newRawMemory() *rawMemory { return &rawMemory{streams: make(map[string]*[]uint64)} }

// append copies bodies into w's arena and appends them to m as the next
// events of stream, returning the stream's new length.
func (m *rawMemory) append(w *rawMemoryWriter, stream string, bodies [][]byte) int {
	w.copies = w.copies[:0]
	for _, b := range bodies {
		if len(w.arena) < len(b) {
			w.arena = make([]byte, max(rawMemoryArena, len(b)))
		}
		c := w.arena[:len(b):len(b)]
		copy(c, b)
		w.arena = w.arena[len(b):]
		w.copies = append(w.copies, c)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.streams[stream]
	if idx == nil {
		idx = new([]uint64)
		m.streams[stream] = idx
	}
	for _, c := range w.copies {
		i := m.head
		if i/rawMemoryChunk == uint64(len(m.chunks)) {
			m.chunks = append(m.chunks, new([rawMemoryChunk][]byte))
		}
		m.chunks[i/rawMemoryChunk][i%rawMemoryChunk] = c
		m.head++
		*idx = append(*idx, m.head)
	}
	return len(*idx)
}

// rawMemoryAppend measures rawMemory with the same batches and writers.
func (r *runner) rawMemoryAppend(name string, batch, writers int) *appendSide {
	m := newRawMemory()
	bodies := make([][]byte, batch)
	for i := range bodies {
		bodies[i] = samplePayload()
	}
	ids := make([]string, writers)
	ws := make([]rawMemoryWriter, writers)
	for w := range ids {
		ids[w] = fmt.Sprintf("writer-%d", w)
	}
	return &appendSide{
		label: name + " raw memory",
		row:   Row{Case: name, Group: "append", Subject: "raw memory (arena copy, then mutex: chunked log, position index)", Kind: KindLimit, Batch: batch, Writers: writers},
		op: func(_ context.Context, w int) error {
			m.append(&ws[w], ids[w], bodies)
			return nil
		},
		close: func() error { return nil },
	}
}
