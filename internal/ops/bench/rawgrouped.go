package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5/pgtype"
)

// rawGroupConnsMax caps the grouped raw PostgreSQL side's connections,
// hence how many of its groups commit at once.
const rawGroupConnsMax = 8

// rawGroupMinParallel and rawGroupBatchMax are, for batches, the store's
// rule for its groups (postgres.parallelMinEvents, postgres.DefaultGroups):
// a group starts beside the one in flight only with 256 events queued, and
// at most two run at once, so that a few large groups insert side by side
// instead of many small ones. Single events keep up to rawGroupConnsMax
// groups starting at once, which is that side's best for them.
const (
	rawGroupMinParallel = 256
	rawGroupBatchMax    = 2
)

// rawPostgresGroupedAppend is a limit the store's grouped appends cannot
// beat: the store's rows inserted as the store groups them, without what
// the store adds. Writers queue their batches; whenever fewer than
// min(writers, rawGroupConnsMax) groups are in flight (for batches, fewer
// than rawGroupBatchMax, and none or rawGroupMinParallel events queued: the
// store's rule),
// one writer takes everything queued and inserts it with one INSERT …
// SELECT FROM unnest in one transaction, committed under the server's
// settings (so the group's commit is its flush), and answers the writers
// of the group. It has no counter, no version check, no commits row and
// no durable head. The pgbench-style rawPostgresAppend stays the limit the
// targets of issue 17 are read against; at many single-event writers the
// store beats that one, not this one.
func (r *runner) rawPostgresGroupedAppend(ctx context.Context, name string, batch, writers int) (*appendSide, error) {
	conns := min(writers, rawGroupConnsMax)
	if batch > 1 {
		conns = min(writers, rawGroupBatchMax)
	}
	pool, table, closeAll, err := r.openRawPostgres(ctx, "cqrsbench_rawg", conns)
	if err != nil {
		return nil, err
	}
	sql := "INSERT INTO " + table + ` (stream_type, stream_id, version, name, schema, time_s, time_ns, data, event_id)
SELECT $1, x.id, x.v, $2, 1, x.ts, x.tn, x.data, x.eid
FROM unnest($3::bytea[], $4::bigint[], $5::bigint[], $6::int[], $7::bytea[], $8::uuid[]) AS x(id, v, ts, tn, data, eid)`
	data := samplePayload()
	stream, ename := []byte(streamType), []byte(eventName)
	blank := make([][]runtime.EventData, writers)
	ids := make([][]byte, writers)
	for w := range writers {
		blank[w] = make([]runtime.EventData, batch)
		ids[w] = fmt.Appendf(nil, "writer-%d", w)
	}
	versions := make([]int64, writers)
	minParallel := 0
	if batch > 1 {
		minParallel = rawGroupMinParallel
	}
	g := &rawGrouper{max: conns, batch: batch, minParallel: minParallel, run: func(reqs []*rawGroupReq) error {
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
	subject := fmt.Sprintf("raw postgres grouped (the store's event rows, one INSERT per group of queued appends, up to %d groups at once)", conns)
	if minParallel > 0 {
		subject = fmt.Sprintf("raw postgres grouped (the store's event rows, one INSERT per group of queued appends, up to %d groups at once, a group beside others with %d events queued)", conns, minParallel)
	}
	row := Row{Case: name, Group: "append", Subject: subject,
		Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
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

// rawGroupReq is one writer's batch waiting for its group.
type rawGroupReq struct {
	w    int
	done chan error // buffered
}

// rawGrouper forms the grouped raw side's groups: up to max at once, each
// of everything queued when it starts; a group beside others starts only
// with at least minParallel events queued (0: at once).
type rawGrouper struct {
	max         int
	batch       int // events per writer's batch
	minParallel int
	run         func([]*rawGroupReq) error

	mu       sync.Mutex
	queue    []*rawGroupReq
	inFlight int
}

// do queues writer w's batch and waits for its group's commit.
func (g *rawGrouper) do(ctx context.Context, w int) error {
	q := &rawGroupReq{w: w, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	var lead []*rawGroupReq
	if g.inFlight < g.max && (g.inFlight == 0 || len(g.queue)*g.batch >= g.minParallel) {
		g.inFlight++
		lead, g.queue = g.queue, nil
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

// lead runs a group, answers its writers, then hands everything queued
// meanwhile to a goroutine as the next group, or frees the group's slot.
func (g *rawGrouper) lead(reqs []*rawGroupReq) {
	err := g.run(reqs)
	for _, q := range reqs {
		q.done <- err
	}
	g.mu.Lock()
	next := g.queue
	g.queue = nil
	if len(next) == 0 {
		g.inFlight--
	}
	g.mu.Unlock()
	if len(next) > 0 {
		go g.lead(next)
	}
}
