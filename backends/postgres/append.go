package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Append statuses returned by the append_events function.
const (
	appendOK        = 0
	appendConflict  = 1
	appendDuplicate = 2
	appendTooLarge  = 3
)

// Append appends req.Events to req.Stream.
//
// Concurrent appends without an idempotency key are combined into groups
// (see group.go): one call of the schema's append_group_packed function checks
// each append on its own (a mismatch is a *runtime.ConflictError for that
// append only), inserts their events, takes the positions of all of them
// with one update of the log_head counter and one commits row (commits.go)
// and commits; its flush follows in the same round trip. The appends that
// queue while a group runs form the next, which starts as soon as the
// previous one's commit is answered, beside its flush, or at once beside it
// when enough events are queued (see DefaultGroups and WithGroups).
//
// An unkeyed append alone in its process is one statement that does what
// append_events does and records the durable head (appendLone). Other
// appends are one call of append_events each: without a key, one
// UPDATE locks, checks and moves the stream's row; with a key, the row is
// locked first, then the key is recorded (a key already recorded, or being
// recorded by a transaction that then commits, is a *runtime.DuplicateError,
// even when the expected version is stale: a retry of an append that
// succeeded). Locks are taken in the order stream(s, sorted), key, counter,
// so appends cannot deadlock.
//
// Both functions commit with synchronous_commit = off, so the counter's
// row lock is held for microseconds rather than for a WAL flush, and
// Append returns only after a flush that covers its commit (flusher.go):
// an acknowledged append is durable under the server's synchronous_commit,
// and readers, who follow the durable head, never see it earlier. An
// append alone in its process instead commits synchronously, with the
// durable head in the same transaction (appendSync).
//
// Round trips: one for a group (call, commit and flush pipelined), for a
// lone append (two when its stream's row does not match: append_events
// then says why), and for a single append while no more appends are in flight
// than the pool has connections (call and flush pipelined); an append may
// first wait for the group taking positions. A single append beyond that
// sends its call (one round trip) and waits for the flusher's next round.
// The NOTIFY for other processes follows on the notifier's connection.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	leave, err := s.begin(ctx, "append")
	if err != nil {
		return runtime.AppendResult{}, err
	}
	defer leave()
	if err := storekit.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: append: %w", err)
	}
	op := "append to " + req.Stream.String()
	var out appendOut
	if req.IdempotencyKey == "" && s.testHookBeforeCommit == nil && s.groupMax > 0 {
		out, err = s.appendGrouped(ctx, req)
	} else {
		out, err = s.appendOne(ctx, req, s.grouper.idle(), nil)
	}
	if err != nil {
		return runtime.AppendResult{}, err
	}
	if out.status != appendOK && out.actual >= int64(deletedBase) {
		return s.deletedAppend(ctx, req, op, out) // delete.go
	}
	return s.appendResult(req, op, out)
}

// appendOne appends req in a transaction of its own. lone says that no
// other append of this process is queued or taking positions: then, if no
// other single append is in flight either, it commits synchronously (see
// appendSync).
//
// ev, when not nil, holds req's events already encoded for its group
// (encodeEvents), which an unkeyed lone append sends as they are.
func (s *Store) appendOne(ctx context.Context, req runtime.AppendRequest, lone bool, ev *groupEvents) (appendOut, error) {
	n := s.appending.Add(1)
	defer s.appending.Add(-1)
	self := n <= s.selfFlushMax
	lone = lone && n == 1 && s.lone.alone()
	var args []any
	if !lone || req.IdempotencyKey != "" || s.testHookBeforeCommit != nil {
		args = s.appendArgs(req) // the unkeyed lone statement builds its own
	}
	op := "append to " + req.Stream.String()

	var out appendOut
	if s.testHookBeforeCommit != nil {
		if err := s.expireKey(ctx, op, req.IdempotencyKey); err != nil {
			return out, err
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return out, s.fail(ctx, op, err)
	}
	c := conn.Conn()
	flushed := false
	switch {
	case s.testHookBeforeCommit != nil:
		out, err = s.appendHooked(ctx, c, args)
	case lone:
		out, err = s.appendLone(ctx, c, req, args, ev)
		flushed = err == nil
	case self:
		out, err = s.appendPipelined(ctx, c, args)
		flushed = err == nil
	default:
		out, err = s.appendCall(ctx, c, args)
	}
	if err != nil {
		rollback(c)
		conn.Release()
		return out, s.appendErr(ctx, req, op, err)
	}
	conn.Release()
	if out.status == appendOK {
		s.lone.note(uint64(out.base), uint64(out.base)+uint64(len(req.Events)))
	}
	if !flushed {
		// Even a refusal waits: the version or record it was checked
		// against may itself be waiting for its flush.
		if _, err := s.flusher.await(ctx); err != nil {
			if out.status == appendOK {
				// Committed, but not known to be durable.
				err = unknownOutcome("waiting for the flush", err)
			}
			return out, s.fail(ctx, op, err)
		}
	}
	return out, nil
}

// appendArgs are append_events' arguments for req.
func (s *Store) appendArgs(req runtime.AppendRequest) []any {
	n := len(req.Events)
	names := make([][]byte, n)
	schemas := make([]int64, n)
	secs := make([]int64, n)
	nanos := make([]int32, n)
	mds := make([][]byte, n)
	datas := make([][]byte, n)
	eids := make([]pgtype.UUID, n)
	stamp := storekit.NewStamp(req, s.opt.now)
	for i, e := range req.Events {
		id, t := stamp.Event(i)
		eids[i] = pgtype.UUID{Bytes: id, Valid: true}
		names[i] = []byte(e.Name)
		schemas[i] = int64(e.Schema)
		secs[i], nanos[i] = t.Unix(), int32(t.Nanosecond())
		mds[i] = encodeMetadata(e.Metadata)
		datas[i] = e.Data
		if datas[i] == nil {
			datas[i] = []byte{}
		}
	}
	expected := expectedArg(req.Expected)
	var key []byte
	if req.IdempotencyKey != "" {
		key = []byte(req.IdempotencyKey)
	}
	now := stamp.Now()
	return []any{[]byte(req.Stream.Type), []byte(req.Stream.ID), expected, key,
		names, schemas, secs, nanos, mds, datas, eids, now.Unix(), int32(now.Nanosecond()), int64(runtime.MaxVersion)}
}

// expectedArg is the append functions' encoding of an expected version:
// -1 any, -2 the stream must exist, else the version.
func expectedArg(v uint64) int64 {
	switch v {
	case runtime.AnyVersion:
		return -1
	case runtime.StreamExists:
		return -2
	default:
		return int64(v) // ValidateAppend bounds it by MaxVersion
	}
}

// appendOut is append_events' result row.
type appendOut struct {
	status                 int32
	base, actual           int64
	kType, kID             []byte
	kVersion, kPos, kTimeS *int64
	kTimeNs                *int32
}

func (o *appendOut) dest() []any {
	return []any{&o.status, &o.base, &o.actual, &o.kType, &o.kID, &o.kVersion, &o.kPos, &o.kTimeS, &o.kTimeNs}
}

// appendCall sends the call alone (after an expired key's delete, see
// queueExpire), in one round trip; the caller waits for the flusher.
func (s *Store) appendCall(ctx context.Context, c *pgx.Conn, args []any) (appendOut, error) {
	var out appendOut
	b := &pgx.Batch{}
	expire := s.queueExpire(b, args[3].([]byte))
	b.Queue(s.q.appendFn, args...)
	br := c.SendBatch(ctx, b)
	defer br.Close()
	if err := readExpire(br, expire); err != nil {
		return out, err
	}
	if err := br.QueryRow().Scan(out.dest()...); err != nil {
		return out, afterSend("reading the answer", err)
	}
	if err := br.Close(); err != nil {
		return out, afterSend("reading the answer", err)
	}
	return out, nil
}

// queueExpire queues, when idempotency keys expire (WithIdempotencyTTL)
// and key is set, the delete of key's record if it has expired, as a
// transaction of its own (BEGIN, DELETE, COMMIT) ahead of the append in
// the same round trip: in the append's transaction it would lock the key
// before the stream, against the lock order of appends and deletes. A
// concurrent append with the same key either sees the record gone and
// records it itself, or records it first (a fresh record, which this
// deletes not). It returns how many results it queued.
func (s *Store) queueExpire(b *pgx.Batch, key []byte) int {
	cs, cn, ok := s.keyCutoff()
	if !ok || key == nil {
		return 0
	}
	b.Queue("BEGIN")
	b.Queue(s.sql(expireKeySQL), key, cs, cn)
	b.Queue("COMMIT")
	return 3
}

// readExpire reads the n results queueExpire queued. The whole request
// was sent, so a lost answer leaves the append's outcome unknown; a
// refusal skips the rest of the request (nothing appended).
func readExpire(br pgx.BatchResults, n int) error {
	for i := range n {
		tag, err := br.Exec()
		if err == nil && i == n-1 && tag.String() != "COMMIT" {
			err = fmt.Errorf("expired key's delete: commit answered %q", tag.String())
		}
		if err != nil {
			return afterSend("deleting the expired key", err)
		}
	}
	return nil
}

// appendPipelined sends the call in its own transaction, then a flush and
// the NOTIFY, in one round trip. The flush starts after the call has
// committed, so it covers it.
func (s *Store) appendPipelined(ctx context.Context, c *pgx.Conn, args []any) (appendOut, error) {
	var out appendOut
	b := &pgx.Batch{}
	expire := s.queueExpire(b, args[3].([]byte))
	b.Queue("BEGIN")
	b.Queue(s.q.appendFn, args...)
	b.Queue("COMMIT")
	s.queueFlush(b)
	br := c.SendBatch(ctx, b)
	defer br.Close()
	if err := readExpire(br, expire); err != nil {
		return out, err
	}
	// The whole transaction was sent: an answer lost from here on leaves
	// the outcome unknown.
	if _, err := br.Exec(); err != nil {
		return out, afterSend("beginning", err)
	}
	if err := br.QueryRow().Scan(out.dest()...); err != nil {
		return out, afterSend("reading the answer", err)
	}
	if err := commitTag(br); err != nil {
		return out, unknownOutcome("commit", err)
	}
	if _, err := s.readFlush(br); err != nil {
		return out, unknownOutcome("flush", err)
	}
	if err := br.Close(); err != nil {
		return out, unknownOutcome("flush", err)
	}
	s.signal()
	s.notifier.kick()
	return out, nil
}

// appendLone appends an append alone in its process, committed
// synchronously. Unkeyed, it first tries one statement that moves the
// stream's row, takes the positions, inserts the events and records the
// durable head (appendMove or appendUpsert), in an implicit transaction of
// its own: one round trip, one commit, and no function call (a PL/pgSQL
// call cost about 40 µs of the 120 µs a single-event append took beyond a
// raw INSERT). When the stream's row does not match (a conflict, a missing
// stream that must exist, a deleted stream, the version limit), nothing was
// written and appendSync's append_events tells why, in a second round trip.
func (s *Store) appendLone(ctx context.Context, c *pgx.Conn, req runtime.AppendRequest, args []any, ev *groupEvents) (appendOut, error) {
	if req.IdempotencyKey != "" {
		return s.appendSync(ctx, c, args)
	}
	upsert := req.Expected == runtime.AnyVersion || req.Expected == 0
	out := appendOut{status: appendOK}
	if ev == nil {
		ev = s.encodeEvents(req)
	}
	var found bool
	var err error
	if ev.kinds <= loneMaxKinds {
		found, err = s.appendLonePacked(ctx, c, req, ev, upsert, &out)
	} else {
		args = s.appendArgs(req)
		sql := s.q.appendMoveArrays
		if upsert {
			sql = s.q.appendUpsertArrays
		}
		err = c.QueryRow(ctx, sql, args[0], args[1], args[2], int64(len(req.Events)),
			args[4], args[5], args[6], args[7], args[8], args[9], args[10], args[13]).Scan(&out.base, &out.actual)
		found = err == nil
		if isNoRows(err) {
			err = nil
		}
	}
	switch {
	case err != nil:
		return out, afterSend("reading the answer", err)
	case !found:
		if args == nil {
			args = s.appendArgs(req)
		}
		return s.appendSync(ctx, c, args)
	}
	s.signal()
	s.notifier.kick()
	return out, nil
}

// loneMaxKinds bounds the kinds (see groupEvents) a lone append sends
// through appendMove or appendUpsert: the statement subscripts flat arrays,
// which for variable-length elements walks them from their start, so an
// append of many distinct events sends one array per column instead.
const loneMaxKinds = 16

// Names of the lone statements appendLonePacked prepares on each
// connection it uses.
const (
	stmtAppendMove   = "cqrsgen_append_move"
	stmtAppendUpsert = "cqrsgen_append_upsert"
)

// appendLonePacked runs appendMove (appendUpsert when upsert) with req's
// events as encodeEvents built them, in binary format, and scans its row
// into out; found is false when the stream's row did not match (no row,
// nothing written).
func (s *Store) appendLonePacked(ctx context.Context, c *pgx.Conn, req runtime.AppendRequest, ev *groupEvents, upsert bool, out *appendOut) (found bool, err error) {
	name, sql := stmtAppendMove, s.q.appendMove
	if upsert {
		name, sql = stmtAppendUpsert, s.q.appendUpsert
	}
	sd, err := c.Prepare(ctx, name, sql)
	if err != nil {
		return false, err
	}
	params := loneParams(req, ev)
	if len(sd.ParamOIDs) != len(params) {
		return false, fmt.Errorf("the lone append takes %d parameters, want %d", len(sd.ParamOIDs), len(params))
	}
	rr := c.PgConn().ExecPrepared(ctx, name, params, binaryFormats[:len(params)], binaryFormats[:2])
	rows := 0
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) != 2 || len(vals[0]) != 8 || len(vals[1]) != 8 {
			rr.Close()
			return false, fmt.Errorf("the lone append answered %d columns, want two bigints", len(vals))
		}
		out.base, out.actual = int64(binary.BigEndian.Uint64(vals[0])), int64(binary.BigEndian.Uint64(vals[1]))
		rows++
	}
	if _, err := rr.Close(); err != nil {
		return false, err
	}
	return rows == 1, nil
}

// appendSync appends and flushes in one transaction, committed under the
// session's synchronous_commit, in one round trip: the call, then RESET
// synchronous_commit (undoing the call's set_config to off), then the flush
// statement, which inside the transaction reads the head the call just
// took. The COMMIT waits for the WAL flush, so the transaction holds the
// log_head row through it, which is what the asynchronous commit and its
// separate flush avoid; an append alone in its process has nobody here to
// hold up, and saves the second commit (its WAL record and its wake-ups).
// Other processes' appends may wait for that flush on the row; they would
// wait for a flush of their own anyway.
func (s *Store) appendSync(ctx context.Context, c *pgx.Conn, args []any) (appendOut, error) {
	var out appendOut
	b := &pgx.Batch{}
	expire := s.queueExpire(b, args[3].([]byte))
	b.Queue(s.q.appendFn, args...)
	b.Queue(resetSync)
	s.queueFlush(b)
	br := c.SendBatch(ctx, b)
	defer br.Close()
	if err := readExpire(br, expire); err != nil {
		return out, err
	}
	if err := br.QueryRow().Scan(out.dest()...); err != nil {
		// The whole transaction was sent: it may have committed.
		return out, afterSend("reading the answer", err)
	}
	if _, err := br.Exec(); err != nil {
		return out, unknownOutcome("commit", err)
	}
	if _, err := s.readFlush(br); err != nil {
		return out, unknownOutcome("commit", err)
	}
	if err := br.Close(); err != nil {
		return out, unknownOutcome("commit", err)
	}
	s.signal()
	s.notifier.kick()
	return out, nil
}

// resetSync sets synchronous_commit back to the session's default (the
// server's, role's, database's or DSN's setting) for the rest of the
// transaction.
const resetSync = "RESET synchronous_commit"

// appendHooked is the append path of tests that hold the transaction open
// between the call and its commit.
func (s *Store) appendHooked(ctx context.Context, c *pgx.Conn, args []any) (appendOut, error) {
	var out appendOut
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		return out, err
	}
	if err := c.QueryRow(ctx, s.q.appendFn, args...).Scan(out.dest()...); err != nil {
		return out, err
	}
	s.testHookBeforeCommit()
	tag, err := c.Exec(ctx, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("commit answered %q", tag.String())
	}
	if err != nil {
		return out, unknownOutcome("commit", err)
	}
	return out, nil
}

// commitTag reads the result of a queued COMMIT: a transaction that failed
// answers ROLLBACK.
func commitTag(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("commit answered %q", tag.String())
	}
	return err
}

// rollback ends a transaction left open on c by a failed call, even when
// the caller's context is done; a connection that cannot is closed, which
// rolls back too (the pool discards it on release).
func rollback(c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Exec(rctx, "ROLLBACK"); err != nil {
		c.Close(rctx)
	}
}

// appendResult turns append_events' answer into Append's.
func (s *Store) appendResult(req runtime.AppendRequest, op string, out appendOut) (runtime.AppendResult, error) {
	st := req.Stream
	if out.actual < 0 {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w",
			op, &runtime.DecodeError{Stream: st, What: "stream head", Err: fmt.Errorf("negative version %d", out.actual)})
	}
	// The database applied the append rules; storekit.Check states them
	// once for every store, so its verdict on what the database found
	// gives the result or the error, and must agree with the status.
	var existing runtime.IdempotencyRecord
	found := out.status == appendDuplicate
	if found {
		rec, err := out.duplicate(req.IdempotencyKey)
		if err != nil {
			return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
		}
		existing = rec
	}
	switch out.status {
	case appendOK, appendConflict, appendDuplicate, appendTooLarge:
		res, err := storekit.Check(req, uint64(out.actual), uint64(out.base), existing, found)
		switch {
		case err == nil && out.status == appendOK:
			return res, nil
		case err != nil && out.status != appendOK:
			return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
		}
	}
	return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: append_events answered status %d at version %d", op, out.status, out.actual)
}

// duplicate is the idempotency record append_events found for key.
func (o appendOut) duplicate(key string) (runtime.IdempotencyRecord, error) {
	if o.kVersion == nil || o.kPos == nil || o.kTimeS == nil || o.kTimeNs == nil {
		return runtime.IdempotencyRecord{}, &runtime.DecodeError{What: "idempotency record",
			Err: fmt.Errorf("key %q: record vanished", key)}
	}
	rec := runtime.IdempotencyRecord{
		Key:      key,
		Stream:   runtime.StreamID{Type: string(o.kType), ID: string(o.kID)},
		Version:  uint64(*o.kVersion),
		Position: uint64(*o.kPos),
		Time:     time.Unix(*o.kTimeS, int64(*o.kTimeNs)).UTC(),
	}
	if *o.kVersion < 0 || uint64(*o.kVersion) > runtime.MaxVersion || *o.kPos < 0 || *o.kTimeNs < 0 || *o.kTimeNs >= 1e9 {
		return runtime.IdempotencyRecord{}, &runtime.DecodeError{Stream: rec.Stream, What: "idempotency record",
			Err: fmt.Errorf("version %d, position %d, time nanoseconds %d out of range", *o.kVersion, *o.kPos, *o.kTimeNs)}
	}
	return rec, nil
}

// appendErr maps a failed call. A unique violation on the events can only
// mean that another writer got the versions first despite the stream lock
// (a table modified behind the store's back): report it as the conflict it
// is, with the stream's committed version.
func (s *Store) appendErr(ctx context.Context, req runtime.AppendRequest, op string, err error) error {
	if !isUniqueViolation(err) {
		return s.fail(ctx, op, err)
	}
	var actual int64
	if qerr := s.pool.QueryRow(ctx, s.q.streamVersion, []byte(req.Stream.Type), []byte(req.Stream.ID)).Scan(&actual); qerr != nil && !isNoRows(qerr) {
		return s.fail(ctx, op, err)
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w", op,
		&runtime.ConflictError{Stream: req.Stream, Expected: req.Expected, Actual: uint64(max(actual, 0))})
}
