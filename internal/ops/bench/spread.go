package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
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

// spreadCases measures loading spread streams from each store, beside raw
// Pebble reading the same layout.
func (r *runner) spreadCases(ctx context.Context) error {
	if !r.selected(spreadCase) {
		return nil
	}
	var rawDB *pebbledb.DB
	if r.has("pebble") {
		db, closeDB, err := r.openRawPebble()
		if err != nil {
			return err
		}
		defer closeDB()
		if err := populateSpreadRaw(db); err != nil {
			return err
		}
		rawDB = db
	}
	for _, store := range r.cfg.Stores {
		if err := r.spreadStore(ctx, store, rawDB); err != nil {
			return err
		}
	}
	return nil
}

// populateSpreadRaw writes the spread layout's keys into db: position p
// holds event p/spreadStreams+1 of stream p%spreadStreams.
func populateSpreadRaw(db *pebbledb.DB) error {
	data := samplePayload()
	var kbuf []byte
	var pos uint64
	for v := uint64(1); v <= spreadEvents; v++ {
		b := db.NewBatch()
		for i := range spreadStreams {
			st := runtime.StreamID{Type: streamType, ID: spreadID(i)}
			pos++
			value := make([]byte, recordSize(st, v, pos, eventName, data))
			kbuf = rawKeys(b, streamKeyOf(st), v, pos, value, kbuf)
		}
		err := b.Commit(pebbledb.Sync)
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("bench: populating raw pebble (spread): %w", err)
		}
	}
	return nil
}

func (r *runner) spreadStore(ctx context.Context, store string, rawDB *pebbledb.DB) error {
	s, closeStore, err := r.openStore(ctx, store)
	if err != nil {
		return err
	}
	defer closeStore()
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	opened := account.Opened{Owner: "bench owner", At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i := range spreadStreams {
		if _, err := repo.Append(ctx, spreadID(i), runtime.NoStream, opened); err != nil {
			return fmt.Errorf("bench: populating %s: %w", spreadID(i), err)
		}
	}
	// One event per append from 16 writers, op i to stream i mod
	// spreadStreams: the streams take turns.
	var next atomic.Int64
	ops := int64(spreadStreams * (spreadEvents - 1))
	_, err = drive(ctx, nopProgress{}, "populate spread", 16, ops, time.Hour, func(ctx context.Context, _ int) error {
		id := spreadID(int(next.Add(1)-1) % spreadStreams)
		_, err := repo.Append(ctx, id, runtime.AnyVersion, sampleDeposit)
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: populating %s for the spread load: %w", store, err)
	}
	var rawOps []func(context.Context, int) error
	if store == "pebble" && rawDB != nil {
		rawOps = []func(context.Context, int) error{rawPebbleLoad(rawDB, spreadEvents, false, spreadStreams, spreadID, false),
			rawPebbleLoad(rawDB, spreadEvents, false, spreadStreams, spreadID, true)}
	}
	return r.measureLoads(ctx, s, store, spreadCase, spreadEvents, false, spreadStreams, spreadID, rawOps)
}
