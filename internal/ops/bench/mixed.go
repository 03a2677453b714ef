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

// mixedCases measures the mixed workload on each durable store, beside raw
// Pebble reading and writing the same keys.
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

func (r *runner) mixedStore(ctx context.Context, name, store string, snap bool) error {
	var limit Row
	if store == "pebble" {
		var err error
		if limit, err = r.rawPebbleMixed(ctx, name, snap); err != nil {
			return err
		}
		r.add(limit)
	}
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return err
	}
	defer closeStore()
	every := uint64(0)
	if snap {
		every = mixedSnapshotEvery
	}
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(every))
	err = r.populateMixed(ctx, func(ctx context.Context, i int) error {
		id := mixedID(i)
		events := make([]account.AccountEvent, mixedSize(i))
		events[0] = account.Opened{Owner: "bench owner " + id, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
		for j := 1; j < len(events); j++ {
			events[j] = sampleDeposit
		}
		_, err := repo.Append(ctx, id, runtime.NoStream, events...)
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: populating %s for %s: %w", store, name, err)
	}
	var conflicts atomic.Int64
	res, err := drive(ctx, r.cfg.Progress, name+" "+store, mixedWriters, r.lim.loads, r.lim.loadTime, func(ctx context.Context, _ int) error {
		id := mixedID(rand.IntN(mixedAggregates))
		for {
			state, v, err := repo.Load(ctx, id)
			if err != nil {
				return err
			}
			if state.Closed { // decide: a closed account takes no deposit
				return fmt.Errorf("bench: %s is closed", id)
			}
			_, err = repo.Append(ctx, id, v, sampleDeposit)
			if !errors.Is(err, runtime.ErrConflict) {
				return err
			}
			conflicts.Add(1)
		}
	})
	if err != nil {
		return err
	}
	row := Row{Case: name, Group: "mixed", Subject: store + " repository Load + Append (generated)", Kind: KindCqrsgen,
		Synced: durable(store), Batch: 1, Writers: mixedWriters}
	res.fill(&row, 1)
	row.Note = joinNote(row.Note, fmt.Sprintf("%d conflicts retried", conflicts.Load()))
	ratioRate(&row, limit)
	r.add(row)
	return nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
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

// rawPebbleMixed is the mixed workload's limit: raw Pebble holding the
// same keys; each operation reads a random aggregate (with snap, a Get of
// its snapshot key and the index entries after the snapshot's version;
// without, all its index entries) and its records (iterate + seek, copying
// each value), then commits one event's two keys (and, with snap, a new
// snapshot every mixedSnapshotEvery versions) in a synced batch. Versions
// come from an in-memory counter per aggregate: no checks, no conflicts,
// no decoding.
func (r *runner) rawPebbleMixed(ctx context.Context, name string, snap bool) (Row, error) {
	db, closeDB, err := r.openRawPebble()
	if err != nil {
		return Row{}, err
	}
	defer closeDB()
	data := samplePayload()
	body := snapshotBody()
	var pos atomic.Uint64
	heads := make([]atomic.Uint64, mixedAggregates)
	snapKey := func(sk []byte) []byte { return append([]byte{'n'}, sk...) }
	err = r.populateMixed(ctx, func(_ context.Context, i int) error {
		st := runtime.StreamID{Type: streamType, ID: mixedID(i)}
		n := mixedSize(i)
		value := make([]byte, recordSize(st, uint64(n), 100_000, eventName, data))
		b := db.NewBatch()
		first := pos.Add(uint64(n)) - uint64(n)
		var kbuf []byte
		for j := range n {
			kbuf = rawKeys(b, streamKeyOf(st), uint64(j)+1, first+uint64(j)+1, value, kbuf)
		}
		if snap && n >= mixedSnapshotEvery {
			_ = b.Set(snapKey(streamKeyOf(st)), body, nil)
		}
		heads[i].Store(uint64(n))
		err := b.Commit(pebbledb.Sync)
		_ = b.Close()
		return err
	})
	if err != nil {
		return Row{}, fmt.Errorf("bench: populating raw pebble for %s: %w", name, err)
	}
	value := make([]byte, recordSize(runtime.StreamID{Type: streamType, ID: mixedID(0)}, 200, 100_000, eventName, data))
	res, err := drive(ctx, r.cfg.Progress, name+" raw pebble", mixedWriters, r.lim.loads, r.lim.loadTime, func(ctx context.Context, _ int) error {
		i := rand.IntN(mixedAggregates)
		sk := streamKeyOf(runtime.StreamID{Type: streamType, ID: mixedID(i)})
		head := heads[i].Load()
		after := uint64(0)
		if snap && head >= mixedSnapshotEvery {
			// The first snapshot of an aggregate may still be in another
			// goroutine's batch: then read every event, as the store does.
			v, closer, err := db.Get(snapKey(sk))
			switch {
			case err == nil:
				_ = append([]byte(nil), v...)
				_ = closer.Close()
				after = head - head%mixedSnapshotEvery
			case !errors.Is(err, pebbledb.ErrNotFound):
				return fmt.Errorf("snapshot of %s: %w", mixedID(i), err)
			}
		}
		prefix := append([]byte{'s'}, sk...)
		lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
		if _, _, err := rawStreamRead(db, lower, append(append([]byte(nil), prefix...), 0xff), nil, false); err != nil {
			return err
		}
		version := heads[i].Add(1)
		b := db.NewBatch()
		_ = rawKeys(b, sk, version, pos.Add(1), value, nil)
		if snap && version%mixedSnapshotEvery == 0 {
			_ = b.Set(snapKey(sk), body, nil)
		}
		err = b.Commit(pebbledb.Sync)
		_ = b.Close()
		return err
	})
	if err != nil {
		return Row{}, err
	}
	row := Row{Case: name, Group: "mixed", Subject: "raw pebble (read the stream's keys, write one event's keys)", Kind: KindLimit,
		Synced: ptr(true), Batch: 1, Writers: mixedWriters}
	res.fill(&row, 1)
	return row, nil
}
