package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// Append appends req.Events to req.Stream in one transaction:
//
//  1. record the idempotency key, if any (a key already recorded, or being
//     recorded by a transaction that then commits, makes the append fail
//     with a *runtime.DuplicateError and write nothing);
//  2. lock the stream's row (creating it at version 0) and check the
//     expected version against it (a mismatch is a *runtime.ConflictError);
//  3. in one statement, take positions from the log head counter, insert
//     the events, move the stream's version, complete the idempotency
//     record and queue a NOTIFY;
//  4. COMMIT, pipelined with step 3 so the head row stays locked for one
//     round trip plus the WAL flush.
//
// Steps 1 and 2 travel in one round trip as well. Locks are always taken in
// the order key, stream, head, so appends cannot deadlock.
func (s *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	leave, err := s.begin(ctx, "append")
	if err != nil {
		return runtime.AppendResult{}, err
	}
	defer leave()
	if err := runtime.ValidateAppend(req); err != nil {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: append: %w", err)
	}
	n := len(req.Events)
	names := make([][]byte, n)
	schemas := make([]int64, n)
	secs := make([]int64, n)
	nanos := make([]int32, n)
	mds := make([][]byte, n)
	datas := make([][]byte, n)
	for i, e := range req.Events {
		t := runtime.NormalizeTime(e.Time, s.opt.now)
		names[i] = []byte(e.Name)
		schemas[i] = int64(e.Schema)
		secs[i], nanos[i] = t.Unix(), int32(t.Nanosecond())
		mds[i] = encodeMetadata(e.Metadata)
		datas[i] = e.Data
		if datas[i] == nil {
			datas[i] = []byte{}
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return runtime.AppendResult{}, s.fail(ctx, "append to "+req.Stream.String(), err)
	}
	defer conn.Release()
	c := conn.Conn()
	res, err := s.appendTx(ctx, c, req, names, schemas, secs, nanos, mds, datas)
	if err != nil {
		if c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
			// Roll back even when ctx is done; a connection that cannot is
			// closed, which rolls back too (the pool discards it on release).
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
				c.Close(rctx)
			}
			cancel()
		}
		return runtime.AppendResult{}, err
	}
	s.signal()
	return res, nil
}

func (s *Store) appendTx(ctx context.Context, c *pgx.Conn, req runtime.AppendRequest,
	names [][]byte, schemas, secs []int64, nanos []int32, mds, datas [][]byte) (runtime.AppendResult, error) {
	st := req.Stream
	op := "append to " + st.String()
	typ, id := []byte(st.Type), []byte(st.ID)
	now := runtime.NormalizeTime(time.Time{}, s.opt.now)
	var key []byte
	if req.IdempotencyKey != "" {
		key = []byte(req.IdempotencyKey)
	}

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if key != nil {
		b.Queue(s.q.idemInsert, key, typ, id, int64(0), int64(0), now.Unix(), int32(now.Nanosecond()))
	}
	b.Queue(s.q.streamLock, typ, id)
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return runtime.AppendResult{}, s.fail(ctx, op, err)
	}
	fresh := true
	if key != nil {
		var one int
		err := br.QueryRow().Scan(&one)
		if isNoRows(err) {
			fresh = false
		} else if err != nil {
			br.Close()
			return runtime.AppendResult{}, s.fail(ctx, op, err)
		}
	}
	var actual int64
	if err := br.QueryRow().Scan(&actual); err != nil {
		br.Close()
		return runtime.AppendResult{}, s.fail(ctx, op, err)
	}
	if err := br.Close(); err != nil {
		return runtime.AppendResult{}, s.fail(ctx, op, err)
	}
	if !fresh {
		rec, err := s.loadIdem(ctx, c, req.IdempotencyKey)
		if err != nil {
			return runtime.AppendResult{}, err
		}
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DuplicateError{Existing: rec})
	}
	if actual < 0 {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w",
			op, &runtime.DecodeError{Stream: st, What: "stream head", Err: fmt.Errorf("negative version %d", actual)})
	}
	if err := runtime.CheckExpected(st, req.Expected, uint64(actual)); err != nil {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	n := uint64(len(names))
	first, last := uint64(actual)+1, uint64(actual)+n
	if last > runtime.MaxVersion {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w: version %d over the limit %d",
			op, runtime.ErrTooLarge, last, runtime.MaxVersion)
	}

	sql := s.q.appendQuiet
	if s.opt.notify {
		sql = s.q.appendNotify
	}
	args := []any{int64(n), typ, id, int64(first), names, schemas, secs, nanos, mds, datas, int64(last), key, s.channel}
	var base int64
	if hook := s.testHookBeforeCommit; hook != nil {
		if err := c.QueryRow(ctx, sql, args...).Scan(&base, nil); err != nil {
			return runtime.AppendResult{}, s.appendErr(ctx, c, st, req.Expected, op, err)
		}
		hook()
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			return runtime.AppendResult{}, s.fail(ctx, op+": commit (outcome unknown)", err)
		}
	} else {
		b := &pgx.Batch{}
		b.Queue(sql, args...)
		b.Queue("COMMIT")
		br := c.SendBatch(ctx, b)
		if err := br.QueryRow().Scan(&base, nil); err != nil {
			br.Close()
			return runtime.AppendResult{}, s.appendErr(ctx, c, st, req.Expected, op, err)
		}
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("commit answered %q", tag.String())
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return runtime.AppendResult{}, s.fail(ctx, op+": commit (outcome unknown)", err)
		}
	}
	return runtime.AppendResult{
		FirstVersion:  first,
		LastVersion:   last,
		FirstPosition: uint64(base) + 1,
		LastPosition:  uint64(base) + n,
	}, nil
}

// appendErr maps a failed insert. A unique violation on the events can only
// mean that another writer got the versions first despite the stream lock
// (a table modified behind the store's back): report it as the conflict it
// is, with the stream's committed version.
func (s *Store) appendErr(ctx context.Context, c *pgx.Conn, st runtime.StreamID, expected uint64, op string, err error) error {
	if !isUniqueViolation(err) {
		return s.fail(ctx, op, err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
		return s.fail(ctx, op, err)
	}
	var actual int64
	if qerr := c.QueryRow(ctx, s.q.streamVersion, []byte(st.Type), []byte(st.ID)).Scan(&actual); qerr != nil && !isNoRows(qerr) {
		return s.fail(ctx, op, err)
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.ConflictError{Stream: st, Expected: expected, Actual: uint64(actual)})
}
