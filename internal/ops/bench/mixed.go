package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// The read-heavy mixed workload: mixedWriters goroutines each load a
// random aggregate (10 to 100 events when populated), decide, and append
// one event at the version they loaded; a conflict with another goroutine
// is retried from the load. With snapshots on, the repository snapshots
// every mixedSnapshotEvery events, so a load reads a snapshot and a tail.
const (
	mixedWriters       = 16
	mixedAggregates    = 200
	mixedSnapshotEvery = 25
)

func mixedCaseName(snap bool) string {
	if snap {
		return "mixed/load-decide-append/snapshots=on"
	}
	return "mixed/load-decide-append/snapshots=off"
}

func mixedID(i int) string { return fmt.Sprintf("mixed-%d", i) }

// mixedSize is the number of events aggregate i holds when populated.
func mixedSize(i int) int { return 10 + (i*37)%91 }

// mixedRounds is how many turns each side of a mixed case takes, the
// order rotated every round (see runSides).
const mixedRounds = 4

// mixedCases measures the mixed workload on each store, beside a limit
// reading and writing the same keys in the same state (Pebble, memory).
func (r *runner) mixedCases(ctx context.Context) error {
	for _, snap := range []bool{false, true} {
		name := mixedCaseName(snap)
		if !r.selected(name) {
			continue
		}
		for _, store := range r.cfg.Stores {
			if err := r.mixedStore(ctx, name, store, snap); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillMixed writes the mixed workload's aggregates through the generated
// repository (so with snapshots on, every aggregate of 25 events or more
// gets a snapshot at its last version).
func (r *runner) fillMixed(ctx context.Context, repo *account.AccountRepository) error {
	return r.populateMixed(ctx, func(ctx context.Context, i int) error {
		id := mixedID(i)
		events := make([]account.AccountEvent, mixedSize(i))
		events[0] = account.Opened{Owner: "bench owner " + id, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
		for j := 1; j < len(events); j++ {
			events[j] = realisticDeposit(id, j)
		}
		_, err := repo.Append(ctx, id, runtime.NoStream, events...)
		return err
	})
}

// mixedStore measures one store's mixed case beside its limit, the two
// sides taking mixedRounds turns each. For Pebble the store is filled, then
// settled (settle.go): the limit runs on a checkpoint of the store's own
// compacted database, so both sides start from the same keys, bytes and
// layout. For memory the limit runs on a copy of the filled store's
// bodies (rawMemoryOf).
func (r *runner) mixedStore(ctx context.Context, name, store string, snap bool) (err error) {
	every := uint64(0)
	if snap {
		every = mixedSnapshotEvery
	}
	options := []runtime.Option{runtime.WithSnapshotEvery(every), runtime.WithErrorHandler(func(err error) {
		fmt.Fprintf(r.cfg.Log, "cqrsbench: %s: %v\n", name, err)
	})}
	s, raw, closeAll, err := r.openFilled(ctx, store, func(s runtime.Store) error {
		if err := r.fillMixed(ctx, account.NewAccountRepository(s, options...)); err != nil {
			return fmt.Errorf("bench: populating %s for %s: %w", store, name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(); err == nil {
			err = cerr
		}
	}()
	repo := account.NewAccountRepository(s, options...)
	var conflicts atomic.Int64
	storeSide := &appendSide{
		label: name + " " + store,
		row: Row{Case: name, Group: "mixed", Subject: store + " repository Load + Append (generated)", Kind: KindCqrsgen,
			Synced: durable(store), Batch: 1, Writers: mixedWriters},
		op: func(ctx context.Context, _ int) error {
			id := mixedID(rand.IntN(mixedAggregates))
			for {
				state, v, err := repo.Load(ctx, id)
				if err != nil {
					return err
				}
				if state.Closed { // decide: a closed account takes no deposit
					return fmt.Errorf("bench: %s is closed", id)
				}
				_, err = repo.Append(ctx, id, v, realisticDeposit(id, int(v)+1))
				if !errors.Is(err, runtime.ErrConflict) {
					return err
				}
				conflicts.Add(1)
			}
		},
		close: func() error { return nil },
		note:  func() string { return fmt.Sprintf("%d conflicts retried", conflicts.Load()) },
	}
	var limit *appendSide
	if raw.pebble != nil {
		g := newRawGroupCommit(raw.pebble)
		limit = rawPebbleMixed(raw.pebble, g, name, snap)
		limit.close = func() error { g.close(); return nil }
	} else if _, ok := s.(*memory.Store); ok {
		m, snaps, err := rawMemoryOf(ctx, s)
		if err != nil {
			return err
		}
		limit = rawMemoryMixed(m, snaps, name, snap)
	}
	open := []func() (*appendSide, error){func() (*appendSide, error) { return storeSide, nil }}
	rounds := 1
	if limit != nil {
		open = append([]func() (*appendSide, error){func() (*appendSide, error) { return limit, nil }}, open...)
		rounds = mixedRounds
	}
	sides, err := r.runSides(ctx, open, rounds, mixedWriters, r.lim.loads, r.lim.loadTime)
	if err != nil {
		return err
	}
	for _, sd := range sides {
		sd.res.fill(&sd.row, 1)
		sd.row.Note = joinNote(sd.row.Note, sd.noted)
		if rounds > 1 && sd.res.capped {
			sd.row.Note = joinNote(sd.row.Note, fmt.Sprintf("%d turns, alternating", rounds))
		}
	}
	if len(sides) == 2 {
		ratioRate(&sides[1].row, sides[0].row)
		r.add(sides[0].row)
	}
	r.add(sides[len(sides)-1].row)
	return nil
}

// joinNote joins two parts of a row's note, either possibly empty.
func joinNote(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// populateMixed runs put for every aggregate from 16 goroutines.
func (r *runner) populateMixed(ctx context.Context, put func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	_, err := drive(ctx, nopProgress{}, "populate mixed", 16, mixedAggregates, time.Hour, func(ctx context.Context, _ int) error {
		return put(ctx, int(next.Add(1)-1))
	})
	return err
}

// rawPebbleMixed is the mixed workload's limit, on db, a checkpoint of the
// store's own settled database: each operation reads a random aggregate
// the way the store must at least (with snap, a Get of the store's
// snapshot key of it, then the index entries after the snapshot's version;
// without, all its index entries; and its records, next-or-seek, copying
// each value: rawStreamRead), then writes one event's two keys (and, with
// snap, the snapshot key when the version reaches a multiple of
// mixedSnapshotEvery, in the same batch) through g, which groups
// concurrent writers' batches into one synced commit as the store does.
// Versions and snapshot versions come from in-memory counters per
// aggregate: no checks, no conflicts, no decoding.
func rawPebbleMixed(db *pebbledb.DB, g *rawGroupCommit, name string, snap bool) *appendSide {
	data := samplePayload()
	body := snapshotBody()
	heads := make([]atomic.Uint64, mixedAggregates)
	snaps := make([]atomic.Uint64, mixedAggregates) // version of the last snapshot written
	for i := range heads {
		heads[i].Store(uint64(mixedSize(i)))
		if snap && mixedSize(i) >= mixedSnapshotEvery {
			snaps[i].Store(uint64(mixedSize(i)))
		}
	}
	value := make([]byte, max(recordSize(runtime.StreamID{Type: streamType, ID: mixedID(mixedAggregates - 1)}, eventName, data), longestRecord(db)))
	type wstate struct {
		w   *rawWrite
		buf []byte
	}
	ws := make([]wstate, mixedWriters)
	for i := range ws {
		ws[i].w = newRawWrite()
	}
	return &appendSide{
		label: name + " raw pebble",
		row: Row{Case: name, Group: "mixed", Subject: "raw pebble (read the stream's keys, write one event's keys, writers grouped into one synced commit)", Kind: KindLimit,
			Synced: ptr(true), Batch: 1, Writers: mixedWriters},
		op: func(_ context.Context, w int) error {
			st := &ws[w]
			i := rand.IntN(mixedAggregates)
			sk := streamKeyOf(runtime.StreamID{Type: account.AccountStreamType, ID: mixedID(i)})
			after := uint64(0)
			if snap {
				v, closer, err := db.Get(append([]byte{'n'}, sk...))
				switch {
				case err == nil:
					st.buf = append(st.buf[:0], v...)
					_ = closer.Close()
					after = snaps[i].Load()
				case !errors.Is(err, pebbledb.ErrNotFound):
					return fmt.Errorf("snapshot of %s: %w", mixedID(i), err)
				}
			}
			prefix := append([]byte{'s'}, sk...)
			lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
			n, buf, err := rawStreamRead(db, lower, append(append([]byte(nil), prefix...), 0xff), st.buf, false)
			st.buf = buf
			if err != nil {
				return err
			}
			if n == 0 && after == 0 {
				return fmt.Errorf("raw read of %s: no records", mixedID(i))
			}
			version := heads[i].Add(1)
			wr := st.w
			wr.sk, wr.version, wr.n, wr.value = sk, version-1, 1, value
			wr.extraKey, wr.extraValue = nil, nil
			if snap && version%mixedSnapshotEvery == 0 {
				wr.extraKey, wr.extraValue = append([]byte{'n'}, sk...), body
			}
			if err := g.write(wr); err != nil {
				return err
			}
			if wr.extraKey != nil {
				snaps[i].Store(version)
			}
			return nil
		},
		note: g.note,
	}
}

// longestRecord returns the size of the longest record value among the
// first thousand of db (0 if it holds none): the limit writes values as
// long as the store's longest, so at least the store's bytes.
func longestRecord(db *pebbledb.DB) int {
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'q'}})
	if err != nil {
		return 0
	}
	defer it.Close()
	n := 0
	for ok, i := it.First(), 0; ok && i < 1000; ok, i = it.Next(), i+1 {
		n = max(n, len(it.Value()))
	}
	return n
}

// rawMemoryMixed is the memory store's mixed limit, on m, a copy of the
// store's filled events (rawMemoryOf): each operation reads a random
// aggregate the least a memory load must (with snap, a copy of its
// snapshot's body, then the bodies after the snapshot's version; without,
// every body; each copied into one buffer per writer) and appends one
// body as long as the store's longest to it (rawMemory.append). Versions
// and snapshot versions come from in-memory counters: no checks, no
// conflicts, no decoding.
func rawMemoryMixed(m *rawMemory, snaps map[string][]byte, name string, snap bool) *appendSide {
	snapVers := make([]atomic.Uint64, mixedAggregates)
	for i := range snapVers {
		if snap && mixedSize(i) >= mixedSnapshotEvery {
			snapVers[i].Store(uint64(mixedSize(i)))
		}
	}
	longest := 0
	for _, c := range m.chunks {
		for _, b := range c {
			longest = max(longest, len(b))
		}
	}
	value := make([]byte, longest)
	type wstate struct {
		w   rawMemoryWriter
		buf []byte
	}
	ws := make([]wstate, mixedWriters)
	return &appendSide{
		label: name + " raw memory",
		row: Row{Case: name, Group: "mixed", Subject: "raw memory (copy the stream's bodies, append one body)", Kind: KindLimit,
			Batch: 1, Writers: mixedWriters},
		op: func(_ context.Context, w int) error {
			st := &ws[w]
			i := rand.IntN(mixedAggregates)
			sid := mixedID(i)
			after := uint64(0)
			if snap {
				if b, ok := snaps[sid]; ok {
					st.buf = append(st.buf[:0], b...)
					after = snapVers[i].Load()
				}
			}
			m.mu.Lock()
			positions := *m.streams[sid]
			chunks := m.chunks
			m.mu.Unlock()
			if after > uint64(len(positions)) {
				return fmt.Errorf("raw memory: %s: snapshot at %d of %d events", sid, after, len(positions))
			}
			for _, p := range positions[after:] {
				st.buf = append(st.buf[:0], chunks[(p-1)/rawMemoryChunk][(p-1)%rawMemoryChunk]...)
			}
			if n := m.append(&st.w, sid, [][]byte{value}); snap && n%mixedSnapshotEvery == 0 {
				snapVers[i].Store(uint64(n))
			}
			return nil
		},
		close: func() error { return nil },
	}
}
