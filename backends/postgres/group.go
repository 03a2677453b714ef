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
// WithGroups says otherwise. Groups insert their rows before they take the
// log_head row (commits.go), so a second group inserts beside the first;
// but a group beyond the first starts only with parallelMinEvents queued,
// since smaller groups cost more CPU per event than they save
// (docs/storage.md).
const DefaultGroups = 2

// parallelMinEvents is how many events must be queued for a group to start
// while another is taking its positions; fewer wait for that group's
// commit, as with one group at a time. Measured at 8 writers against the
// pgbench-style limit (docs/benchmarks-history.md, sixth pass): 100-event
// appends 0.84x-0.87x with this rule against 0.66x-0.74x one group at a
// time; single events lost with any second group (0.48x-0.54x against
// 0.61x-0.64x), as small groups cost more CPU per event.
const parallelMinEvents = 256

// syncGroupMaxEvents bounds the groups that commit synchronously while
// their process appends alone (groupPipeline): a group of at least this
// many events commits asynchronously and flushes beside the next group,
// as groups do when other processes append. A synchronous commit holds the
// log_head row through its WAL flush, so the group inserting beside it
// (large groups insert side by side: parallelMinEvents) waits one flush
// before it takes its positions; that wait costs large groups more than
// the second transaction it saves, which is what small groups of single
// events pay most for. 100-event appends at 8 writers, alternated with
// every group synchronous: 215K-233K against 186K-210K events/s
// (docs/benchmarks-history.md, ninth pass).
const syncGroupMaxEvents = 100

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
	req    runtime.AppendRequest
	events *groupEvents // req's events, encoded for append_group_packed
	state  atomic.Int32
	done   chan groupAnswer // buffered
}

type groupAnswer struct {
	out appendOut
	err error
}

// grouper combines the concurrent unkeyed appends of a process into
// groups: one transaction (append_group_packed), one position update, one insert
// and one flush for all the appends that queued while the store's other
// groups took their positions. Up to max groups are in their transaction at
// once, each on a pooled connection; a group leaves that phase when its
// asynchronous commit is answered, and its flush then runs beside the next
// group's transaction. Every append in a group is checked on its own, so a
// conflict fails only its append.
type grouper struct {
	mu       sync.Mutex
	queue    []*groupReq
	queued   int // events in queue
	inFlight int // groups before their commit's answer

	appends atomic.Int32 // unkeyed appends from their call to their answer

	// Riding (see rideGroup): whether the next group that would commit
	// synchronously commits asynchronously instead (g.mu), and the
	// process's durable mark, which riders wait on.
	rideNext bool
	durable  durableMark
}

// durableMark is the highest position this process knows durable: every
// position up to it is committed and its WAL flushed. A group that rides
// waits on it.
type durableMark struct {
	mu  sync.Mutex
	pos uint64
	ch  chan struct{} // closed and cleared by advance and poke; nil while nobody waits
}

// advance records that every position up to pos is durable and wakes the
// waiters.
func (d *durableMark) advance(pos uint64) {
	d.mu.Lock()
	d.pos = max(d.pos, pos)
	d.wake()
	d.mu.Unlock()
}

// poke wakes the waiters without a new mark: a group ended, and a rider
// may be left with no group in flight to wait for.
func (d *durableMark) poke() {
	d.mu.Lock()
	d.wake()
	d.mu.Unlock()
}

func (d *durableMark) wake() {
	if d.ch != nil {
		close(d.ch)
		d.ch = nil
	}
}

// after returns nil if pos is durable, else a channel closed at the next
// advance or poke.
func (d *durableMark) after(pos uint64) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pos >= pos {
		return nil
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// idle reports that no unkeyed append of the process is in flight: none
// queued, taking positions or waiting for its flush.
func (g *grouper) idle() bool {
	return g.appends.Load() == 0
}

// appendGrouped queues req for a group and waits for its answer.
func (s *Store) appendGrouped(ctx context.Context, req runtime.AppendRequest) (appendOut, error) {
	r := s.newGroupReq(req)
	g := &s.grouper
	g.appends.Add(1)
	defer g.appends.Add(-1)
	batch := g.enqueue(r, s.groupMax)
	if batch != nil {
		// Lead this group in the caller's goroutine (an append alone in
		// its process pays no hand-over).
		s.runGroup(batch)
	}
	select {
	case a := <-r.done:
		return a.out, a.err
	case <-ctx.Done():
		op := "append to " + req.Stream.String()
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			return appendOut{}, s.fail(ctx, op, ctx.Err())
		}
		return appendOut{}, s.fail(ctx, op, unknownOutcome("waiting for its group", ctx.Err()))
	}
}

// newGroupReq returns req ready to queue, its events encoded for its
// group (and for the lone statement, should it go alone).
func (s *Store) newGroupReq(req runtime.AppendRequest) *groupReq {
	return &groupReq{req: req, events: s.encodeEvents(req), done: make(chan groupAnswer, 1)}
}

// enqueue queues r and returns the group its caller is to lead, if one
// starts: when no group is taking positions, or when fewer than limit are and
// at least parallelMinEvents events are queued; else nil (r waits for a
// group's commit, see committed).
func (g *grouper) enqueue(r *groupReq, limit int) []*groupReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, r)
	g.queued += len(r.req.Events)
	if g.inFlight >= limit || (g.inFlight > 0 && g.queued < parallelMinEvents) {
		return nil
	}
	g.inFlight++
	return g.take()
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
	g.queued -= events
	return batch
}

// committed ends a group's transaction phase: the requests queued
// meanwhile become the next group, led by a goroutine of its own, or the
// group's slot is freed. The caller is in flight (an Append, or a group's
// goroutine answering in-flight Appends), so Close is still waiting.
func (s *Store) committed() {
	g := &s.grouper
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.inFlight--
		g.mu.Unlock()
		return
	}
	next := g.take()
	g.mu.Unlock()
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		s.runGroup(next)
	}()
}

// runGroup appends the requests of batch that are still wanted in one
// transaction, calls committed once that transaction is answered, then
// flushes and answers each. If the transaction fails as a whole, each
// append is retried on its own, so that one bad append answers its own
// error only.
func (s *Store) runGroup(batch []*groupReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		s.committed()
		s.grouper.durable.poke() // a rider may have waited for this group
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
	if len(live) == 1 && s.grouper.appends.Load() == 1 && s.lone.alone() {
		// Alone, no other unkeyed append anywhere between its call and its
		// answer (none queued, none in a group's flush, which would come
		// back for another), and no other process seen appending: a single
		// append that commits synchronously, in one round trip
		// (appendSync). An append that arrives meanwhile waits for it, as
		// it would for any group taking positions. Otherwise even a group
		// of one goes through append_group_packed, whose flush overlaps the next.
		out, err := s.appendOne(ctx, live[0].req, true, live[0].events)
		s.committed()
		live[0].done <- groupAnswer{out, err}
		return
	}
	outs, retry, err := s.appendGroupTx(ctx, live, s.committed)
	switch {
	case retry:
		// The server refused the group's statement (say, a unique
		// violation on a table changed behind the store's back): nothing
		// was written. Each append on its own answers its own error.
		for _, r := range live {
			out, err := s.appendOne(ctx, r.req, false, nil)
			r.done <- groupAnswer{out, err}
		}
	case err != nil:
		for _, r := range live {
			r.done <- groupAnswer{err: fmt.Errorf("cqrsgen: postgres: append to %s: %w", r.req.Stream, MarkUnavailable(err))}
		}
	default:
		for i, r := range live {
			r.done <- groupAnswer{out: outs[i]}
		}
	}
}

// appendGroupTx runs append_group_packed for reqs and its flush in one round trip
// (groupPipeline), calling committed once the group's commit is answered
// (or nothing was written). retry reports that the server refused the call
// itself, so nothing was written.
func (s *Store) appendGroupTx(ctx context.Context, reqs []*groupReq, committed func()) (outs []appendOut, retry bool, err error) {
	// Riders wait while a group is in flight (see rideGroup); each group's
	// end wakes them, whether or not it advanced the mark.
	defer s.grouper.durable.poke()
	params := groupParams(reqs)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		committed()
		return nil, false, err // nothing sent
	}
	c := conn.Conn()
	var statuses []int32
	var bases, actuals []int64
	events := 0
	for _, r := range reqs {
		events += len(r.req.Events)
	}
	sync := s.lone.alone() && events < syncGroupMaxEvents
	ride := false
	if sync {
		// Every other group that would commit synchronously rides on the
		// next one's commit instead.
		s.grouper.mu.Lock()
		ride = s.grouper.rideNext
		s.grouper.rideNext = !ride
		s.grouper.mu.Unlock()
	}
	retry, err = s.groupPipeline(ctx, c, params, []any{&statuses, &bases, &actuals}, sync && !ride, ride, committed)
	if err != nil {
		rollback(c)
		if retry && !c.IsClosed() {
			// The statement prepared on this connection may be what
			// failed (say, the function was replaced and its plan went
			// stale): prepare it afresh next time, as pgx's own statement
			// cache does.
			_ = c.Deallocate(ctx, stmtAppendGroup)
			_ = c.Deallocate(ctx, stmtAppendGroupDurable)
		}
		conn.Release()
		return nil, retry, err
	}
	conn.Release()
	if len(statuses) != len(reqs) || len(bases) != len(reqs) || len(actuals) != len(reqs) {
		return nil, false, fmt.Errorf("append_group_packed answered %d statuses for %d appends", len(statuses), len(reqs))
	}
	outs = make([]appendOut, len(reqs))
	var first, last uint64
	for i, r := range reqs {
		outs[i] = appendOut{status: statuses[i], base: bases[i], actual: actuals[i]}
		if statuses[i] == appendOK {
			if last == 0 {
				first = uint64(bases[i])
			}
			last = uint64(bases[i]) + uint64(len(r.req.Events))
		}
	}
	if last != 0 {
		s.lone.note(first, last)
	}
	if ride {
		if err := s.rideGroup(ctx, last); err != nil {
			return nil, false, err
		}
	} else {
		s.grouper.durable.advance(last)
	}
	s.signal()
	s.notifier.kick()
	return outs, false, nil
}

// Names of the statements groupPipeline prepares on each connection it
// uses (a connection serves one store, hence one schema).
const (
	stmtAppendGroup        = "cqrsgen_append_group_packed"
	stmtAppendGroupDurable = "cqrsgen_append_group_durable"
	stmtFlush              = "cqrsgen_flush"
)

// binaryFormats marks every parameter (and result column) as binary: the
// group's call and the lone statement send theirs pre-encoded.
var binaryFormats = [...]int16{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}

// groupPipeline runs the group in one round trip, in one of two ways.
//
// With sync (no other process seen appending lately, s.lone, and a group
// of fewer than syncGroupMaxEvents events), in one
// transaction: append_group_durable with params (binary, from
// groupParams), which records the group's last position as durable, a
// flush request and a Sync, which commits under the session's
// synchronous_commit. The flush request makes the server send the call's
// row before it commits: committed is then called, so that the next group
// runs its stream updates and inserts while this one's commit waits for
// the WAL, and takes the positions once this one has committed. The commit
// holds the log_head row through the WAL flush; since schema version 8 a
// group inserts its rows before it takes that row, so the next group of
// the process waits for one flush, not a flush and an insert, and each
// group saves the second transaction of a separate flush
// (docs/benchmarks-history.md, eighth pass).
//
// Without sync (other processes append too, whose groups would queue
// behind each of this process's flushes, or a large group, whose flush
// the group inserting beside it would wait for): append_group_packed in an
// implicit transaction of its own and a Sync, which commits it with
// synchronous_commit = off and is answered before the WAL flush (then
// committed is called), then the flush statement and a second Sync, its
// commit waiting for the WAL flush; the flushes of many groups and
// processes share the server's WAL flushes.
//
// With ride (a group that would commit synchronously, every other one:
// see rideGroup): append_group_packed and a Sync, committed
// asynchronously, and no flush; committed is called at the commit's
// answer.
//
// The call's row is scanned into dest. retry reports that the server
// refused the call itself (nothing was written); committed is called
// exactly once.
func (s *Store) groupPipeline(ctx context.Context, c *pgx.Conn, params [][]byte, dest []any, sync, ride bool, committed func()) (retry bool, err error) {
	called := false
	done := func() {
		if !called {
			called = true
			committed()
		}
	}
	defer done()
	name, sql := stmtAppendGroup, s.q.appendGroup
	if sync {
		name, sql = stmtAppendGroupDurable, s.q.appendGroupDurable
	}
	sdCall, err := c.Prepare(ctx, name, sql)
	if err != nil {
		return false, err
	}
	if len(sdCall.ParamOIDs) != len(params) {
		return false, fmt.Errorf("%s takes %d parameters, want %d", name, len(sdCall.ParamOIDs), len(params))
	}
	m := c.TypeMap()
	callFormats := make([]int16, len(sdCall.Fields))
	for i, f := range sdCall.Fields {
		callFormats[i] = m.FormatCodeForOID(f.DataTypeOID)
	}
	var sdFlush *pgconn.StatementDescription // the flush, without sync or ride
	if !sync && !ride {
		if sdFlush, err = c.Prepare(ctx, stmtFlush, s.q.flush); err != nil {
			return false, err
		}
	}
	p := c.PgConn().StartPipeline(ctx)
	p.SendQueryPrepared(sdCall.Name, params, binaryFormats[:len(params)], callFormats)
	switch {
	case sync:
		p.SendFlushRequest()
	case !ride:
		p.SendPipelineSync()
		p.SendQueryPrepared(sdFlush.Name, nil, nil, []int16{m.FormatCodeForOID(sdFlush.Fields[0].DataTypeOID)})
	}
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		p.Close()
		return false, unknownOutcome("sending the group", err)
	}
	// The call's row: with sync sent before the commit, else followed by
	// the Sync of its asynchronous commit.
	err = readRow(p, m, dest)
	if err != nil {
		p.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return true, err
		}
		return false, unknownOutcome("reading the group's answer", err)
	}
	if sync {
		done()
	} else {
		if err := readSync(p); err != nil {
			p.Close()
			return false, unknownOutcome("commit", err)
		}
		done()
		if ride {
			if err := p.Close(); err != nil {
				return false, unknownOutcome("commit", err)
			}
			return false, nil
		}
		var head int64
		if err := readRow(p, m, []any{&head}); err != nil {
			p.Close()
			return false, unknownOutcome("flush", err)
		}
	}
	// The last Sync: the commit that waits for the WAL flush.
	if err := readSync(p); err != nil {
		p.Close()
		return false, unknownOutcome("commit", err)
	}
	if err := p.Close(); err != nil {
		return false, unknownOutcome("commit", err)
	}
	return false, nil
}

// readRow reads the next result of p, which must be one row, into dest.
func readRow(p *pgconn.Pipeline, m *pgtype.Map, dest []any) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return fmt.Errorf("pipeline answered %T, want a result", res)
	}
	rows := 0
	var scanErr error
	for rr.NextRow() {
		rows++
		vals, fields := rr.Values(), rr.FieldDescriptions()
		if len(vals) != len(dest) {
			scanErr = fmt.Errorf("statement answered %d columns, want %d", len(vals), len(dest))
			continue
		}
		for i := range dest {
			if err := m.Scan(fields[i].DataTypeOID, fields[i].Format, vals[i], dest[i]); err != nil && scanErr == nil {
				scanErr = fmt.Errorf("column %s: %w", fields[i].Name, err)
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return err
	}
	if scanErr == nil && rows != 1 {
		scanErr = fmt.Errorf("statement answered %d rows, want 1", rows)
	}
	return scanErr
}

// readSync reads the Sync that ends a part of p's pipeline; an error
// before it (a failed commit) is returned.
func readSync(p *pgconn.Pipeline) error {
	res, err := p.GetResults()
	if err != nil {
		return err
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return fmt.Errorf("pipeline answered %T, want its sync", res)
	}
	return nil
}

// rideGroup makes the appends of a riding group durable: the group
// committed asynchronously, up to position last, and released the
// log_head row at once instead of holding it through a WAL flush. The next
// group takes the row after that commit, so its commit record follows the
// rider's in the WAL, and its synchronous commit flushes the WAL past both:
// the riders are answered when a group that makes its appends durable
// itself advances the process's durable mark to last (a synchronous
// group's last position; an asynchronous group's flush; a flusher round's
// head). While no group is in flight, the rider waits for a flusher round.
// So two consecutive groups share one WAL flush, and the counter is held
// through one flush for every two groups, not one: single events at 8
// writers measured 12.0K-13.0K against 10.7K-11.5K events/s
// (docs/benchmarks-history.md, ninth pass).
func (s *Store) rideGroup(ctx context.Context, last uint64) error {
	g := &s.grouper
	for {
		ch := g.durable.after(last)
		if ch == nil {
			return nil
		}
		// A group in flight (before its commit's answer; the next one, led
		// at this group's commit, counts from then on) will take the
		// positions after last and then either commit synchronously, or
		// flush, or ride in turn and end the same way: each advances the
		// mark past last, or ends and wakes this loop. With none in
		// flight, nobody will: a flusher round does.
		g.mu.Lock()
		busy := g.inFlight > 0
		g.mu.Unlock()
		if !busy {
			break
		}
		<-ch
	}
	if _, err := s.flusher.await(ctx); err != nil {
		return unknownOutcome("flush", err)
	}
	return nil
}
