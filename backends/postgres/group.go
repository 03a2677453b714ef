package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// DefaultGroups is how many append groups a store runs at once unless
// WithGroups says otherwise. One at a time did best (docs/storage.md): every
// group takes the log_head row once, and more groups in flight queue on it.
const DefaultGroups = 1

// groupMaxEvents caps the events of one group (more wait for the next).
const groupMaxEvents = runtime.MaxBatchEvents

// States of a queued append.
const (
	reqQueued   = 0
	reqTaken    = 1
	reqCanceled = 2
)

// groupReq is an unkeyed append waiting for its group.
type groupReq struct {
	req   runtime.AppendRequest
	state atomic.Int32
	done  chan groupAnswer // buffered
}

type groupAnswer struct {
	out appendOut
	err error
}

// grouper combines the concurrent unkeyed appends of a process into
// groups: one transaction (append_group), one position update, one insert
// and one flush for all the appends that queued while the store's other
// groups ran. Up to max groups run at once, each on a pooled connection.
// Every append in a group is checked on its own, so a conflict fails only
// its append.
type grouper struct {
	mu       sync.Mutex
	queue    []*groupReq
	inFlight int
}

// appendGrouped queues req for a group and waits for its answer.
func (s *Store) appendGrouped(ctx context.Context, req runtime.AppendRequest) (appendOut, error) {
	r := &groupReq{req: req, done: make(chan groupAnswer, 1)}
	g := &s.grouper
	g.mu.Lock()
	g.queue = append(g.queue, r)
	var batch []*groupReq
	if g.inFlight < s.groupMax {
		g.inFlight++
		batch = g.take()
	}
	g.mu.Unlock()
	if batch != nil {
		// Lead this group in the caller's goroutine (an append alone in
		// its process pays no hand-over), then pass the queue on.
		s.runGroup(batch)
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.inFlight--
			g.mu.Unlock()
		} else {
			next := g.take()
			g.mu.Unlock()
			s.inflight.Add(1) // the caller is in flight, so Close is still waiting
			go s.runGroups(next)
		}
	}
	select {
	case a := <-r.done:
		return a.out, a.err
	case <-ctx.Done():
		op := "append to " + req.Stream.String()
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			return appendOut{}, s.fail(ctx, op, ctx.Err())
		}
		return appendOut{}, s.fail(ctx, op+" (outcome unknown)", ctx.Err())
	}
}

// take removes from the queue the requests of the next group. g.mu is held.
func (g *grouper) take() []*groupReq {
	events, n := 0, 0
	for n < len(g.queue) && (n == 0 || events+len(g.queue[n].req.Events) <= groupMaxEvents) {
		events += len(g.queue[n].req.Events)
		n++
	}
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	return batch
}

// runGroups runs batch, then the groups queued meanwhile, until the queue
// is empty.
func (s *Store) runGroups(batch []*groupReq) {
	defer s.inflight.Done()
	g := &s.grouper
	for {
		s.runGroup(batch)
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.inFlight--
			g.mu.Unlock()
			return
		}
		batch = g.take()
		g.mu.Unlock()
	}
}

// runGroup appends the requests of batch that are still wanted in one
// transaction, followed by its flush in the same round trip, and answers
// each. If the transaction fails as a whole, each append is retried on its
// own, so that one bad append answers its own error only.
func (s *Store) runGroup(batch []*groupReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	// One lock order for stream rows across every group of every process;
	// appends to one stream keep their order.
	slices.SortStableFunc(live, func(a, b *groupReq) int {
		if c := bytes.Compare([]byte(a.req.Stream.Type), []byte(b.req.Stream.Type)); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.req.Stream.ID), []byte(b.req.Stream.ID))
	})
	ctx := context.Background()
	if len(live) == 1 {
		// A group of one is a single append (append_events is cheaper).
		out, err := s.appendOne(ctx, live[0].req)
		live[0].done <- groupAnswer{out, err}
		return
	}
	outs, retry, err := s.appendGroupTx(ctx, live)
	switch {
	case retry:
		// The server refused the group's statement (say, a unique
		// violation on a table changed behind the store's back): nothing
		// was written. Each append on its own answers its own error.
		for _, r := range live {
			out, err := s.appendOne(ctx, r.req)
			r.done <- groupAnswer{out, err}
		}
	case err != nil:
		for _, r := range live {
			r.done <- groupAnswer{err: fmt.Errorf("cqrsgen: postgres: append to %s: %w", r.req.Stream, err)}
		}
	default:
		for i, r := range live {
			r.done <- groupAnswer{out: outs[i]}
		}
	}
}

// appendGroupTx runs append_group for reqs and flushes. retry reports that
// the server refused the call itself, so nothing was written.
func (s *Store) appendGroupTx(ctx context.Context, reqs []*groupReq) (outs []appendOut, retry bool, err error) {
	var (
		types, ids, names, mds, datas [][]byte
		expected, counts, seq         []int64
		schemas, secs                 []int64
		owner, nanos                  []int32
		eids                          []pgtype.UUID
	)
	for k, r := range reqs {
		a := s.appendArgs(r.req)
		types = append(types, a[0].([]byte))
		ids = append(ids, a[1].([]byte))
		expected = append(expected, a[2].(int64))
		counts = append(counts, int64(len(r.req.Events)))
		for j := range r.req.Events {
			owner = append(owner, int32(k+1))
			seq = append(seq, int64(j+1))
		}
		names = append(names, a[4].([][]byte)...)
		schemas = append(schemas, a[5].([]int64)...)
		secs = append(secs, a[6].([]int64)...)
		nanos = append(nanos, a[7].([]int32)...)
		mds = append(mds, a[8].([][]byte)...)
		datas = append(datas, a[9].([][]byte)...)
		eids = append(eids, a[10].([]pgtype.UUID)...)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err // nothing sent
	}
	c := conn.Conn()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(s.q.appendGroup, types, ids, expected, counts, owner, seq, names, schemas, secs, nanos, mds, datas, eids, int64(runtime.MaxVersion))
	b.Queue("COMMIT")
	s.queueFlush(b)
	var statuses []int32
	var bases, actuals []int64
	br := c.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&statuses, &bases, &actuals)
		var pe *pgconn.PgError
		retry = errors.As(err, &pe)
	}
	if err == nil {
		err = commitTag(br)
		if err != nil {
			err = fmt.Errorf("commit (outcome unknown): %w", err)
		}
	}
	if err == nil {
		if _, err = s.readFlush(br); err != nil {
			err = fmt.Errorf("flush (outcome unknown): %w", err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("flush (outcome unknown): %w", cerr)
	}
	if err != nil {
		rollback(c)
		conn.Release()
		return nil, retry, err
	}
	conn.Release()
	s.signal()
	s.notifier.kick()
	if len(statuses) != len(reqs) || len(bases) != len(reqs) || len(actuals) != len(reqs) {
		return nil, false, fmt.Errorf("append_group answered %d statuses for %d appends", len(statuses), len(reqs))
	}
	outs = make([]appendOut, len(reqs))
	for i := range reqs {
		outs[i] = appendOut{status: statuses[i], base: bases[i], actual: actuals[i]}
	}
	return outs, false, nil
}
