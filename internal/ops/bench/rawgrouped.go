package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// rawGroupConnsMax caps the grouped raw PostgreSQL side's connections,
// hence, for single events, how many of its groups commit at once.
const rawGroupConnsMax = 8

// rawGroupMinParallel and rawGroupBatchMax are, for batches, the store's
// rule for its groups (postgres.parallelMinEvents, postgres.DefaultGroups):
// a group starts beside one before its commit only with 256 events
// queued, and at most two are before their commit at once, so that a few
// large groups insert side by side instead of many small ones. Single
// events keep up to rawGroupConnsMax groups starting at once, which is
// that side's best for them.
const (
	rawGroupMinParallel = 256
	rawGroupBatchMax    = 2
)

// rawGroupMaxEvents caps the events of one group, as the store caps its
// own (runtime.MaxBatchEvents): more wait for the next group.
const rawGroupMaxEvents = runtime.MaxBatchEvents

// rawPostgresGroupedAppend is a limit the store's grouped appends cannot
// beat: the store's rows inserted as the store groups them, without what
// the store adds. Writers queue their appends and one writer leads a group
// of everything queued (see rawGrouper). For batches the group commits as
// the store's do (rawPostgresGroupedBatches). For single events, up to
// min(writers, rawGroupConnsMax) groups run at once, each one INSERT …
// SELECT FROM unnest in one transaction committed under the server's
// settings (so the group's commit is its flush), and the next group starts
// once a group's writers are answered. It has no counter, no version
// check, no commits row and no durable head. The pgbench-style
// rawPostgresAppend stays the limit the targets of issue 17 are read
// against; at many single-event writers the store beats that one, not this
// one.
func (r *runner) rawPostgresGroupedAppend(ctx context.Context, name string, batch, writers int) (*appendSide, error) {
	if batch > 1 {
		return r.rawPostgresGroupedBatches(ctx, name, batch, writers)
	}
	conns := min(writers, rawGroupConnsMax)
	pool, schema, closeAll, err := r.openRawPostgres(ctx, "cqrsbench_rawg", conns)
	if err != nil {
		return nil, err
	}
	sql := "INSERT INTO " + schema + `.events (stream_type, stream_id, version, name, schema, time_s, time_ns, data, event_id)
SELECT $1, x.id, x.v, $2, 1, x.ts, x.tn, x.data, x.eid
FROM unnest($3::bytea[], $4::bigint[], $5::bigint[], $6::int[], $7::bytea[], $8::uuid[]) AS x(id, v, ts, tn, data, eid)`
	data := samplePayload()
	stream, ename := []byte(streamType), []byte(eventName)
	blank, ids, versions := rawWriters(writers, batch)
	g := &rawGrouper{max: conns, batch: batch, run: func(reqs []*rawGroupReq, _ bool, _ func()) error {
		var (
			gids, gdatas [][]byte
			gvers, gts   []int64
			gtn          []int32
			geids        []pgtype.UUID
		)
		for _, q := range reqs {
			stamp := storekit.NewStamp(runtime.AppendRequest{Events: blank[q.w]}, time.Now)
			for i := range batch {
				id, t := stamp.Event(i)
				gids = append(gids, ids[q.w])
				gvers = append(gvers, versions[q.w]+int64(i)+1)
				gts, gtn = append(gts, t.Unix()), append(gtn, int32(t.Nanosecond()))
				gdatas = append(gdatas, data)
				geids = append(geids, pgtype.UUID{Bytes: id, Valid: true})
			}
		}
		_, err := pool.Exec(ctx, sql, stream, ename, gids, gvers, gts, gtn, gdatas, geids)
		return err
	}}
	row := Row{Case: name, Group: "append",
		Subject: fmt.Sprintf("raw postgres grouped (the store's event rows, one INSERT per group of queued appends, up to %d groups at once)", conns),
		Kind:    KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
	return &appendSide{
		label: name + " raw postgres grouped",
		row:   row,
		op: func(ctx context.Context, w int) error {
			err := g.do(ctx, w)
			if err == nil {
				versions[w] += int64(batch) // only writer w touches it, after its group
			}
			return err
		},
		close: closeAll,
	}, nil
}

// Names of the statements rawPostgresGroupedBatches prepares on each of
// its connections.
const (
	stmtRawGroupAsync = "cqrsbench_rawg_async"
	stmtRawGroupSync  = "cqrsbench_rawg_sync"
	stmtRawGroupFlush = "cqrsbench_rawg_flush"
)

// rawPostgresGroupedBatches is the grouped limit for batches: what the
// store does with a group at the storage level (backends/postgres,
// group.go), without its bookkeeping. A group's writer sends, in one
// round trip on one connection, the group's INSERT … SELECT FROM unnest,
// committed with synchronous_commit = off (visible, not yet durable), then
// a flush: a one-row upsert in a transaction of its own, committed under
// the server's settings. The next group starts as soon as the INSERT's
// commit is answered, so that its INSERT runs beside this group's flush;
// the group's writers are answered after the flush. At most
// rawGroupBatchMax groups are before their commit at once, a second one
// only with rawGroupMinParallel events queued, and a group takes at most
// rawGroupMaxEvents events: the store's rules. The parameters are packed
// as the store packs them: per append its stream id, first version and
// clock reading, per event only its append's number, its data and its id,
// all written in PostgreSQL's binary format (the data and append numbers
// encoded once per group size). A group alone (one writer's append, and no
// other between its call and its answer) commits its INSERT synchronously
// and needs no flush, as the store's lone append. The rows are keyed as
// the store's, (commit_id, off), with one commit id per group from a
// sequence. No counter, no version check, no commits row, no durable head.
func (r *runner) rawPostgresGroupedBatches(ctx context.Context, name string, batch, writers int) (*appendSide, error) {
	// Up to rawGroupBatchMax groups before their commit, and those in
	// their flush beside them.
	conns := min(writers, rawGroupConnsMax)
	pool, schema, closeAll, err := r.openRawPostgres(ctx, "cqrsbench_rawg", conns)
	if err != nil {
		return nil, err
	}
	// The store's events are keyed by (commit_id, off), one commit id per
	// group from a sequence (schema version 8, whose migration leaves
	// this column order), not by a bigserial that takes a sequence value
	// per row.
	if _, err := pool.Exec(ctx, "ALTER TABLE "+schema+`.events DROP COLUMN position,
	ADD COLUMN commit_id bigint NOT NULL, ADD COLUMN off bigint NOT NULL, ADD PRIMARY KEY (commit_id, off);
CREATE SEQUENCE `+schema+`.commit_ids;
CREATE TABLE `+schema+".flushes (pid int PRIMARY KEY, n bigint NOT NULL)"); err != nil {
		return nil, errors.Join(fmt.Errorf("bench: raw postgres: %w", err), closeAll())
	}
	insert, async, flush := rawGroupStatements(schema)
	prepare := func(c *pgx.Conn) error {
		for _, s := range [...]struct{ name, sql string }{{stmtRawGroupAsync, async}, {stmtRawGroupSync, insert}, {stmtRawGroupFlush, flush}} {
			if _, err := c.Prepare(ctx, s.name, s.sql); err != nil { // pgx: once per connection
				return err
			}
		}
		return nil
	}
	if err := openConns(ctx, pool, conns, prepare); err != nil {
		return nil, errors.Join(err, closeAll())
	}
	arrays := newRawGroupArrays(batch)
	blank, ids, versions := rawWriters(writers, batch)
	var groups, appends atomic.Int64
	formats := []int16{1, 1, 1, 1, 1, 1, 1, 1, 1}
	be4 := func(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
	be8 := func(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }
	g := &rawGrouper{max: min(conns, rawGroupBatchMax), batch: batch, minParallel: rawGroupMinParallel, maxEvents: rawGroupMaxEvents,
		run: func(reqs []*rawGroupReq, alone bool, committed func()) error {
			n := len(reqs)
			gids := append(make([]byte, 0, 20+n*(4+len(ids[0])+2)), binaryArray(17, n)...) // bytea
			gvers := append(make([]byte, 0, 20+n*12), binaryArray(20, n)...)               // int8
			gts := append(make([]byte, 0, 20+n*12), binaryArray(20, n)...)                 // int8
			gtn := append(make([]byte, 0, 20+n*8), binaryArray(23, n)...)                  // int4
			geids := append(make([]byte, 0, 20+n*batch*20), binaryArray(2950, n*batch)...) // uuid
			for k, q := range reqs {
				stamp := storekit.NewStamp(runtime.AppendRequest{Events: blank[q.w]}, time.Now)
				now := stamp.Now()
				gids = append(be4(gids, int32(len(ids[q.w]))), ids[q.w]...)
				// Event i of append k is x.i = k*batch + i + 1 of the
				// group: version versions[w] + i + 1.
				gvers = be8(be4(gvers, 8), versions[q.w]-int64(k*batch))
				gts = be8(be4(gts, 8), now.Unix())
				gtn = be4(be4(gtn, 4), int32(now.Nanosecond()))
				for i := range batch {
					id, _ := stamp.Event(i)
					geids = append(be4(geids, 16), id[:]...)
				}
			}
			owners, datas := arrays.get(n)
			c, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			if err := prepare(c.Conn()); err != nil {
				return err
			}
			params := [][]byte{[]byte(streamType), []byte(eventName), gids, gvers, gts, gtn, owners, datas, geids}
			groups.Add(1)
			appends.Add(int64(n))
			if alone {
				return rawGroupPipeline(ctx, c.Conn().PgConn(), stmtRawGroupSync, params, formats, "", committed)
			}
			// Durability: the flush runs on the same connection after the
			// INSERT's transaction has committed, so its commit record
			// follows the INSERT's in the WAL; committed synchronously,
			// it is answered only once the WAL is flushed up to it, hence
			// up to the INSERT's commit too. The writers are answered
			// after the flush (when run returns): every acknowledged
			// append is durable.
			return rawGroupPipeline(ctx, c.Conn().PgConn(), stmtRawGroupAsync, params, formats, stmtRawGroupFlush, committed)
		}}
	return &appendSide{
		label: name + " raw postgres grouped",
		row: Row{Case: name, Group: "append", Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers,
			Subject: fmt.Sprintf("raw postgres grouped (the store's event rows, one INSERT per group of queued appends, "+
				"under one commit id, committed asynchronously, then a one-row synchronous flush in the same round trip before the writers are answered; "+
				"the next group starts at the commit; up to %d groups before their commit, a group beside another with %d events queued; "+
				"parameters packed in binary)", g.max, rawGroupMinParallel)},
		op: func(ctx context.Context, w int) error {
			err := g.do(ctx, w)
			if err == nil {
				versions[w] += int64(batch) // only writer w touches it, after its group
			}
			return err
		},
		note: func() string {
			if n := groups.Load(); n > 0 {
				return fmt.Sprintf("%.1f appends per group", float64(appends.Load())/float64(n))
			}
			return ""
		},
		close: closeAll,
	}, nil
}

// rawGroupStatements returns the statements of rawPostgresGroupedBatches
// on the tables of schema (quoted): a group's INSERT, under one commit id,
// the same committed asynchronously, and the flush.
//
// The INSERT's parameters: $1 the stream type, $2 the event name; per
// append $3 its stream id, $4 its first version less its events' place in
// the group, $5 and $6 its clock reading (seconds, nanoseconds); per
// event $7 its append's number (from 1), $8 its data, $9 its id.
func rawGroupStatements(schema string) (insert, async, flush string) {
	// The CTE (materialized: evaluated once) takes the group's commit id
	// and, for async, sets synchronous_commit off: set_config(…, true)
	// holds until the statement's transaction ends, so the commit at the
	// pipeline's Sync is asynchronous. It costs no message of its own (the
	// store sets it inside its function).
	stmt := func(set string) string {
		return `WITH o AS MATERIALIZED (SELECT ` + set + `nextval('` + schema + `.commit_ids') AS c)
INSERT INTO ` + schema + `.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, data, event_id)
SELECT o.c, x.i, $1, ($3::bytea[])[x.k], ($4::bigint[])[x.k] + x.i, $2, 1, ($5::bigint[])[x.k], ($6::int[])[x.k], x.data, x.eid
FROM o, unnest($7::int[], $8::bytea[], $9::uuid[]) WITH ORDINALITY AS x(k, data, eid, i)`
	}
	insert = stmt("")
	async = stmt("set_config('synchronous_commit', 'off', true), ")
	// A synchronous commit that writes WAL: it waits for the WAL flush up
	// to its own commit record.
	flush = "INSERT INTO " + schema + `.flushes AS f (pid, n) VALUES (pg_backend_pid(), 1)
ON CONFLICT (pid) DO UPDATE SET n = f.n + 1`
	return insert, async, flush
}

// rawGroupArrays holds, per number of appends in a group, the per-event
// arrays that depend on nothing else: each event's append number (1-based)
// and its data, in PostgreSQL's binary format, encoded once.
type rawGroupArrays struct {
	batch int
	data  []byte

	mu    sync.Mutex
	sizes map[int][2][]byte
}

func newRawGroupArrays(batch int) *rawGroupArrays {
	return &rawGroupArrays{batch: batch, data: samplePayload(), sizes: map[int][2][]byte{}}
}

// get returns the append numbers (int4[]) and data (bytea[]) of a group
// of n appends. Callers only read them.
func (a *rawGroupArrays) get(n int) (owners, datas []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.sizes[n]; ok {
		return v[0], v[1]
	}
	events := n * a.batch
	owners = append(make([]byte, 0, 20+events*8), binaryArray(23, events)...)
	datas = append(make([]byte, 0, 20+events*(4+len(a.data))), binaryArray(17, events)...)
	for k := range n {
		for range a.batch {
			owners = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(owners, 4), uint32(k+1))
			datas = append(binary.BigEndian.AppendUint32(datas, uint32(len(a.data))), a.data...)
		}
	}
	a.sizes[n] = [2][]byte{owners, datas}
	return owners, datas
}

// rawGroupPipeline sends, in one round trip on c, the prepared statement
// stmt with params (binary) and a Sync, which commits its implicit
// transaction, then, unless flush is "", the prepared statement flush and
// a second Sync, which commits it in a transaction of its own. It calls
// committed once the first Sync is answered (or the pipeline failed), and
// returns once the flush is answered too.
func rawGroupPipeline(ctx context.Context, c *pgconn.PgConn, stmt string, params [][]byte, formats []int16, flush string, committed func()) error {
	defer committed() // at most once: the grouper's committed ignores a second call
	p := c.StartPipeline(ctx)
	p.SendQueryPrepared(stmt, params, formats, nil)
	p.SendPipelineSync()
	if flush != "" {
		p.SendQueryPrepared(flush, nil, nil, nil)
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		return errors.Join(err, p.Close())
	}
	if err := rawPipelineExec(p); err != nil {
		return errors.Join(err, p.Close())
	}
	committed()
	if flush != "" {
		if err := rawPipelineExec(p); err != nil {
			return errors.Join(err, p.Close())
		}
	}
	return p.Close()
}

// rawPipelineExec reads the next result of p, a statement that returns no
// rows, and the Sync after it.
func rawPipelineExec(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("bench: raw postgres: pipeline answered %T, want a result", res)
	}
	if _, err := rr.Close(); err != nil {
		return err
	}
	res, err = p.GetResults()
	if err != nil {
		return err
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return fmt.Errorf("bench: raw postgres: pipeline answered %T, want its sync", res)
	}
	return nil
}

// rawGroupReq is one writer's batch waiting for its group.
type rawGroupReq struct {
	w    int
	done chan error // buffered
}

// rawGrouper forms the grouped raw side's groups, each of what is queued
// when it starts (up to maxEvents events, if set). Up to max groups are
// before their commit at once; a group beside others starts only with at
// least minParallel events queued (0: at once). When a group's commit is
// answered, what queued meanwhile becomes the next group, led by a
// goroutine of its own.
type rawGrouper struct {
	max         int
	batch       int // events per writer's batch
	minParallel int
	maxEvents   int // 0: no cap
	// run runs a group and returns once its writers may be answered. A
	// group whose commit comes before its flush calls committed, from
	// run's goroutine, once the commit is answered, so that the next group
	// starts beside its flush; else the next group starts after its
	// writers are answered. alone reports that the group is one writer's
	// and that no other writer is between its call and its answer.
	run func(reqs []*rawGroupReq, alone bool, committed func()) error

	mu       sync.Mutex
	queue    []*rawGroupReq
	inFlight int // groups before their commit's answer

	calls atomic.Int32 // writers between their call and their answer
}

// do queues writer w's batch and waits for its group's answer.
func (g *rawGrouper) do(ctx context.Context, w int) error {
	g.calls.Add(1)
	defer g.calls.Add(-1)
	q := &rawGroupReq{w: w, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	var lead []*rawGroupReq
	if g.inFlight < g.max && (g.inFlight == 0 || len(g.queue)*g.batch >= g.minParallel) {
		g.inFlight++
		lead = g.take()
	}
	g.mu.Unlock()
	if lead != nil {
		g.lead(lead) // in the caller's goroutine, as the store's first group
	}
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take removes the next group from the queue. g.mu is held.
func (g *rawGrouper) take() []*rawGroupReq {
	n := len(g.queue)
	if g.maxEvents > 0 {
		n = min(n, max(1, g.maxEvents/g.batch))
	}
	reqs := g.queue[:n:n]
	g.queue = append([]*rawGroupReq(nil), g.queue[n:]...)
	return reqs
}

// lead runs a group and answers its writers. At its commit's answer (at
// the latest, once its writers are answered) what queued meanwhile
// becomes the next group, or the group's slot is freed.
func (g *rawGrouper) lead(reqs []*rawGroupReq) {
	released := false
	committed := func() {
		if released {
			return
		}
		released = true
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.inFlight--
			g.mu.Unlock()
			return
		}
		next := g.take()
		g.mu.Unlock()
		go g.lead(next)
	}
	err := g.run(reqs, len(reqs) == 1 && g.calls.Load() == 1, committed)
	for _, q := range reqs {
		q.done <- err
	}
	committed()
}
