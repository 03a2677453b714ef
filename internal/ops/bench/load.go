package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/vmihailenco/msgpack/v5"
)

// loadSizes are the aggregate sizes of the load workload.
var loadSizes = []int{10, 100, 1000}

// stateSnapshot is the store-level snapshot body: an account-like state.
type stateSnapshot struct {
	Owner    string
	Balance  int64
	Open     bool
	Closed   bool
	Deposits int
}

func snapshotBody() []byte {
	b, err := msgpack.Marshal(stateSnapshot{Owner: "bench owner", Balance: 12_345_000, Open: true, Deposits: 1000})
	if err != nil {
		panic(fmt.Sprintf("bench: encoding the sample state: %v", err)) // a fixed struct: cannot fail
	}
	return b
}

func loadCaseName(size int, snap bool) string {
	if snap {
		return fmt.Sprintf("load/events=%d/snapshot", size)
	}
	return fmt.Sprintf("load/events=%d/no-snapshot", size)
}

func aggID(size int, snap bool, i int) string {
	if snap {
		return fmt.Sprintf("snap-%d-%d", size, i)
	}
	return fmt.Sprintf("agg-%d-%d", size, i)
}

// loadCases populates each store once with aggregates of every size, with
// and without snapshots, then measures loading them.
func (r *runner) loadCases(ctx context.Context) error {
	var cases []int // indexes into loadSizes×{false,true}
	for i := range 2 * len(loadSizes) {
		if r.selected(loadCaseName(loadSizes[i/2], i%2 == 1)) {
			cases = append(cases, i)
		}
	}
	if len(cases) == 0 {
		return nil
	}
	for _, store := range r.cfg.Stores {
		if err := r.loadStore(ctx, store, cases); err != nil {
			return err
		}
	}
	return nil
}

// forEachAggregate runs f for every (size, snapshot, index) aggregate of
// the load workload from 16 goroutines.
func (r *runner) forEachAggregate(ctx context.Context, f func(ctx context.Context, size int, snap bool, i int) error) error {
	type job struct {
		size int
		snap bool
		i    int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := f(ctx, j.size, j.snap, j.i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for si, size := range loadSizes {
		for _, snap := range []bool{false, true} {
			for i := range r.lim.loadAggs[si] {
				select {
				case jobs <- job{size, snap, i}:
				case <-ctx.Done():
					break feed
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func (r *runner) aggregatesOf(size int) int {
	for i, s := range loadSizes {
		if s == size {
			return r.lim.loadAggs[i]
		}
	}
	return 0
}

// loadStore fills a store with the load workload through the generated
// repository and measures the load cases. Pebble's limits read a raw
// checkpoint of the store's own database, both flushed and compacted
// (settle.go): the same keys and bytes in the same layout; PostgreSQL's
// read the store's own schema (rawPGLoad).
func (r *runner) loadStore(ctx context.Context, store string, cases []int) (err error) {
	s, raw, closeAll, err := r.openFilled(ctx, store, func(s runtime.Store) error { return r.fillLoads(ctx, s) })
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeAll(); err == nil {
			err = cerr
		}
	}()
	for _, c := range cases {
		size, snap := loadSizes[c/2], c%2 == 1
		name := loadCaseName(size, snap)
		aggs := r.aggregatesOf(size)
		id := func(i int) string { return aggID(size, snap, i) }
		lims, closeLims, err := r.loadLimits(ctx, s, raw, size, snap, aggs, id)
		if err != nil {
			return err
		}
		err = r.measureLoads(ctx, s, store, name, size, snap, aggs, id, lims)
		if err := errors.Join(err, closeLims()); err != nil {
			return err
		}
	}
	return nil
}

// fillLoads appends the load workload's aggregates to s through the
// generated repository, with a snapshot at the last version of the
// snapshot aggregates.
func (r *runner) fillLoads(ctx context.Context, s runtime.Store) error {
	return r.forEachAggregate(ctx, func(ctx context.Context, size int, snap bool, i int) error {
		every := uint64(0)
		if snap {
			every = uint64(size)
		}
		repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(every), runtime.WithErrorHandler(func(err error) {
			fmt.Fprintf(r.cfg.Log, "cqrsbench: populating: %v\n", err)
		}))
		id := aggID(size, snap, i)
		var v uint64
		for v < uint64(size) {
			n := min(100, size-int(v))
			events := make([]account.AccountEvent, n)
			for j := range events {
				events[j] = realisticDeposit(id, int(v)+j+1)
			}
			if v == 0 {
				events[0] = account.Opened{Owner: "bench owner " + id, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			}
			var err error
			if v, err = repo.Append(ctx, id, v, events...); err != nil {
				return fmt.Errorf("bench: populating %s: %w", id, err)
			}
		}
		if snap {
			if _, err := s.LoadSnapshot(ctx, runtime.StreamID{Type: account.AccountStreamType, ID: id}); err != nil {
				return fmt.Errorf("bench: no snapshot of %s after populating: %w", id, err)
			}
		}
		return nil
	})
}

// loadRounds is how many turns each side of a load case takes, the sides
// alternating in rotated order (as the durable append rows do), so that
// the machine's drift falls on all of them alike.
const loadRounds = 4

// loadLimit is a limit row of a load case: subject names it, op loads
// one aggregate.
type loadLimit struct {
	label, subject string
	op             func(context.Context, int) error
}

// loadLimits returns the limits of a load case of store s and the
// function that closes them: for Pebble (raw.pebble is the checkpoint of
// its settled database) raw Pebble reading next-or-seek and, for
// comparison, issue 18's seek-per-record limit; for PostgreSQL one query
// of the stream's rows in the store's own schema on a connection of the
// limit's own (rawPGLoad); for the memory store a raw walk over a copy of
// its bodies (rawMemoryOf); none for other stores.
func (r *runner) loadLimits(ctx context.Context, s runtime.Store, raw filledRaw, size int, snap bool, aggs int, id func(int) string) ([]loadLimit, func() error, error) {
	none := func() error { return nil }
	if raw.pebble != nil {
		return []loadLimit{
			{"raw pebble", "raw pebble (iterate index + next-or-seek records)", rawPebbleLoad(raw.pebble, size, snap, aggs, id, false)},
			{"raw pebble (seek)", "raw pebble, issue 18's limit (iterate index + seek every record)", rawPebbleLoad(raw.pebble, size, snap, aggs, id, true)},
		}, none, nil
	}
	if raw.pgSchema != "" {
		// The plan pinned as for the whole-log limit: without a LIMIT the
		// planner joins a stream's rows to commits by a hash join over a
		// sequential scan of commits (0.66 ms for 100 rows on a log of
		// 3,148 commits, EXPLAIN ANALYZE), where the store's page, with
		// its LIMIT, gets the nested loop over the two indexes; that
		// limit was beaten by the store 1.17x-1.32x with snapshots.
		conn, err := r.rawPGConn(ctx, rawPGScanSettings...)
		if err != nil {
			return nil, nil, err
		}
		subject := "raw postgres (one query of the stream's rows in the store's event_log, no pages; raw data copied)"
		if snap {
			subject = "raw postgres (the snapshot's row and the stream's rows after it in the store's event_log, two statements in one round trip; raw data copied)"
		}
		return []loadLimit{{"raw postgres", subject, rawPGLoad(conn, raw.pgSchema, size, snap, aggs, id)}},
			func() error { return conn.Close(context.WithoutCancel(ctx)) }, nil
	}
	if _, ok := s.(*memory.Store); !ok {
		return nil, none, nil
	}
	m, snaps, err := rawMemoryOf(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return []loadLimit{{"raw memory", "raw memory (the stream's positions walked, each body copied)", rawMemoryLoad(m, snaps, size, snap, aggs, id)}}, none, nil
}

// measureLoads adds the rows of one load case: ReadStream of aggregates
// id(0..aggs-1) (after their snapshot when snap) and the generated
// repository's Load, each beside lims[0] when there are limits (Load
// beside ReadStream otherwise);
// lims[1:] are shown beside lims[0] (issue 18's weaker Pebble limit, for
// comparison). The sides take loadRounds turns each of a share of the
// count and time cap.
func (r *runner) measureLoads(ctx context.Context, s runtime.Store, store, name string, size int, snap bool, aggs int, id func(int) string, lims []loadLimit) error {
	var nextRead, nextLoad atomic.Int64
	readOp := func(ctx context.Context, _ int) error {
		stream := runtime.StreamID{Type: streamType, ID: id(int(nextRead.Add(1)) % aggs)}
		var after uint64
		if snap {
			sn, err := s.LoadSnapshot(ctx, stream)
			if err != nil {
				return err
			}
			after = sn.Version
		}
		var got int
		for rec, err := range s.ReadStream(ctx, stream, after) {
			if err != nil {
				return err
			}
			got += len(rec.Data)
		}
		if got == 0 && !snap {
			return fmt.Errorf("bench: %s: read no events", stream)
		}
		return nil
	}
	repo := account.NewAccountRepository(s)
	loadOp := func(ctx context.Context, _ int) error {
		aid := id(int(nextLoad.Add(1)) % aggs)
		state, v, err := repo.Load(ctx, aid)
		if err != nil {
			return err
		}
		if v != uint64(size) || state.Deposits != size-1 {
			return fmt.Errorf("bench: loaded %s at version %d with %d deposits, want %d and %d", aid, v, state.Deposits, size, size-1)
		}
		return nil
	}
	labels := []string{name + " " + store, name + " " + store + " repository"}
	ops := []func(context.Context, int) error{readOp, loadOp}
	for _, l := range lims {
		labels = append(labels, name+" "+l.label)
		ops = append(ops, l.op)
	}
	res, err := r.alternate(ctx, labels, ops, loadRounds, r.lim.loads, r.lim.loadTime)
	if err != nil {
		return err
	}
	fill := func(row *Row, res driveResult) {
		res.fill(row, size)
		if snap {
			row.Events, row.EventsPerSec = 0, 0
		}
		if row.Note != "" {
			row.Note += fmt.Sprintf(" (%d turns, alternating)", loadRounds)
		}
	}
	row := Row{Case: name, Group: "load", Subject: store + " store (ReadStream, no decoding)", Kind: KindCqrsgen, Batch: size}
	fill(&row, res[0])
	var limit Row
	for i, l := range lims {
		lr := Row{Case: name, Group: "load", Subject: l.subject, Kind: KindLimit, Batch: size}
		fill(&lr, res[2+i])
		if i == 0 {
			limit = lr
			ratioP50(&row, limit)
		} else {
			ratioP50(&lr, limit)
		}
		r.add(lr)
	}
	r.add(row)
	repoRow := Row{Case: name, Group: "load", Subject: store + " repository Load (generated decode + apply)", Kind: KindCqrsgen, Batch: size}
	fill(&repoRow, res[1])
	// Load is set beside the raw limit, not beside ReadStream: it reads
	// through the store's StreamVisitor, which builds no Record, so it
	// can beat ReadStream (by up to 1.15x with a snapshot), and a row the
	// product beats is no limit. ReadStream stands beside it in the table.
	if len(lims) > 0 {
		ratioP50(&repoRow, limit)
	} else {
		ratioP50(&repoRow, row)
	}
	r.add(repoRow)
	return nil
}

// alternate runs each of ops in rounds turns of a share of maxOps and of
// maxTime, the order rotated every round, from one goroutine, and returns
// each op's accumulated result.
func (r *runner) alternate(ctx context.Context, labels []string, ops []func(context.Context, int) error, rounds int, maxOps int64, maxTime time.Duration) ([]driveResult, error) {
	res := make([]driveResult, len(ops))
	share := max(1, maxOps/int64(rounds))
	for round := range rounds {
		for j := range ops {
			i := (round + j) % len(ops)
			d, err := drive(ctx, r.cfg.Progress, labels[i], 1, share, maxTime/time.Duration(rounds), ops[i])
			res[i].add(d)
			if err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// rawPebbleLoad returns the limit's operation: read one aggregate the way
// the Pebble store must at least: (a Get of the snapshot key, then)
// rawStreamRead of the events after it.
func rawPebbleLoad(db *pebbledb.DB, size int, snap bool, aggs int, id func(int) string, seekOnly bool) func(context.Context, int) error {
	var next atomic.Int64
	var buf []byte // one goroutine drives the loads
	return func(ctx context.Context, _ int) error {
		stream := runtime.StreamID{Type: streamType, ID: id(int(next.Add(1)) % aggs)}
		sk := streamKeyOf(stream)
		after := uint64(0)
		if snap {
			v, closer, err := db.Get(append([]byte{'n'}, sk...))
			if err != nil {
				return fmt.Errorf("snapshot of %s: %w", stream, err)
			}
			buf = append(buf[:0], v...)
			_ = closer.Close()
			after = uint64(size)
		}
		prefix := append([]byte{'s'}, sk...)
		lower := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), after+1)
		upper := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), ^uint64(0))
		n, out, err := rawStreamRead(db, lower, upper, buf, seekOnly)
		buf = out
		if err == nil && n != size-int(after) {
			err = fmt.Errorf("raw read of %s: %d records, want %d", stream, n, size-int(after))
		}
		return err
	}
}
