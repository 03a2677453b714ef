package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// The spread load: spreadStreams aggregates of spreadEvents events each,
// every event appended alone, the aggregates taking turns, so that
// consecutive events of one stream lie about spreadStreams positions
// apart in the log (as in a store whose aggregates grow one command at a
// time), where the contiguous load rows find a stream's events in runs
// of up to 100.
const (
	spreadCase    = "load/spread/events=100"
	spreadStreams = 100
	spreadEvents  = 100
)

func spreadID(i int) string { return fmt.Sprintf("spread-%d", i) }

// spreadCases measures loading spread streams from each store, beside the
// store's load limits (loadLimits) reading the same layout.
func (r *runner) spreadCases(ctx context.Context) error {
	if !r.selected(spreadCase) {
		return nil
	}
	for _, store := range r.cfg.Stores {
		if err := r.spreadStore(ctx, store); err != nil {
			return err
		}
	}
	return nil
}

// spreadStore fills a store with the spread layout and measures loading
// its streams. Pebble's limits read a raw checkpoint of the store's own
// database, both flushed and compacted (settle.go); PostgreSQL's read the
// store's own schema (rawPGLoad).
func (r *runner) spreadStore(ctx context.Context, store string) (err error) {
	s, raw, closeAll, err := r.openFilled(ctx, store, func(s runtime.Store) error { return fillSpread(ctx, s) })
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(); err == nil {
			err = cerr
		}
	}()
	lims, closeLims, err := r.loadLimits(ctx, s, raw, spreadEvents, false, spreadStreams, spreadID)
	if err != nil {
		return err
	}
	return errors.Join(r.measureLoads(ctx, s, store, spreadCase, spreadEvents, false, spreadStreams, spreadID, lims), closeLims())
}

// fillSpread writes the spread layout through the generated repository:
// one event per append from 16 writers, op i to stream i mod
// spreadStreams, so that the streams take turns.
func fillSpread(ctx context.Context, s runtime.Store) error {
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	opened := account.Opened{Owner: "bench owner", At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i := range spreadStreams {
		if _, err := repo.Append(ctx, spreadID(i), runtime.NoStream, opened); err != nil {
			return fmt.Errorf("bench: populating %s: %w", spreadID(i), err)
		}
	}
	var next atomic.Int64
	ops := int64(spreadStreams * (spreadEvents - 1))
	_, err := drive(ctx, nopProgress{}, "populate spread", 16, ops, time.Hour, func(ctx context.Context, _ int) error {
		k := int(next.Add(1) - 1)
		id := spreadID(k % spreadStreams)
		_, err := repo.Append(ctx, id, runtime.AnyVersion, realisticDeposit(id, k/spreadStreams+2))
		if err != nil {
			return fmt.Errorf("bench: populating %s for the spread load: %w", id, err)
		}
		return nil
	})
	return err
}
