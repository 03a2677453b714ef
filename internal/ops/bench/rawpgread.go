package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// The read limits of the PostgreSQL store read the filled store's own
// schema, read-only, on a connection of their own: the same rows through
// the same indexes as the store reads, without the store's work (its
// pool, its head, its pages of 1,000 rows, its checks of the envelope,
// its decoding into Records).
// The SQL repeats the store's (backends/postgres/queries.go: eventCols and
// the readStream and snapLoad queries; the event_log view and the
// indexes are in backends/postgres/commits.go), which the bench cannot
// import.

// rawPGEventCols are the columns the store's reads fetch from event_log
// (backends/postgres/queries.go, eventCols), in its order: position is
// column 0, data column 9.
const rawPGEventCols = `position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id`

// rawPGScanSQL reads the whole log in one query: commits by their last
// position, each commit's rows by off. With the plan pinned
// (rawPGScanSettings) the server walks the commits' index on last and,
// per commit, the events' primary key (commit_id, off), which yields the
// rows in position order without a sort; the scan checks that order
// rather than paying the server to sort (ORDER BY commit_last, off makes
// it sort every commit's rows again, docs/benchmarks-history.md). One
// EXPLAIN ANALYZE each on a 200,000-event log of a throwaway server: 45 ms
// of server time for this plan, 88 ms with ORDER BY commit_last, off (an
// incremental sort), 269 ms for the hash join and sort the planner picks
// for that order (a hint of the order of costs, not a measurement).
const rawPGScanSQL = `SELECT ` + rawPGEventCols + ` FROM %s.event_log ORDER BY commit_last`

// rawPGScanSubject names the PostgreSQL whole-log limit in the report.
const rawPGScanSubject = "raw postgres (one streamed query of the store's event_log by commit, no pages; positions checked, raw data copied)"

// rawPGScanSettings pin rawPGScanSQL's and rawPGStreamSQL's plans to the
// nested loop over the two indexes the store's reads also walk. Without statistics (the store
// was just filled and autovacuum may not have analyzed it yet) the planner
// picks a hash join of both tables and a sort on commit_last, which does
// not keep each commit's rows by off; and a whole-log query's estimated
// cost passes jit_above_cost on large logs, where compiling costs more
// than it saves on this plan. The settings are the limit connection's
// own; the store's sessions keep the server's.
var rawPGScanSettings = []string{
	"SET enable_hashjoin = off", "SET enable_mergejoin = off", "SET enable_sort = off",
	"SET max_parallel_workers_per_gather = 0", "SET jit = off",
}

// rawPGStreamSQL reads the events of one stream with version > $3: the
// store's readStream query (backends/postgres/queries.go), its LIMIT $4
// past the stream's length, so that one query reads the whole stream
// where the store reads pages of up to 1,000 rows (a stream of exactly
// 1,000 events in two queries, the second empty, which tells it that the
// stream ended).
const rawPGStreamSQL = `SELECT ` + rawPGEventCols + ` FROM %[1]s.event_log
WHERE stream_type = $1 AND stream_id = $2 AND version > $3 ORDER BY version LIMIT $4`

// rawPGSnapSQL reads a stream's snapshot: the store's snapLoad query
// (backends/postgres/queries.go). Column 0 is its version, 4 its body.
const rawPGSnapSQL = `SELECT version, schema, time_s, time_ns, data FROM %[1]s.snapshots
WHERE stream_type = $1 AND stream_id = $2`

// rawPGTailSQL reads the events of one stream after its snapshot's
// version, found by the statement itself: queued behind rawPGSnapSQL in
// one batch, it lets the limit read a snapshot and its tail in one round
// trip where the store takes two (LoadSnapshot, then ReadStream).
const rawPGTailSQL = `SELECT ` + rawPGEventCols + ` FROM %[1]s.event_log
WHERE stream_type = $1 AND stream_id = $2
	AND version > coalesce((SELECT version FROM %[1]s.snapshots WHERE stream_type = $1 AND stream_id = $2), 0)
ORDER BY version LIMIT $3`

// openFilledPostgres opens a fresh PostgreSQL store in a schema of its
// own (openPostgresSchema) and fills it through fill; it also returns the
// schema's name, for the read limits. closeAll closes the store and drops
// the schema.
func (r *runner) openFilledPostgres(ctx context.Context, fill func(runtime.Store) error) (runtime.Store, string, func() error, error) {
	s, schema, closeAll, err := r.openPostgresSchema(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	if err := fill(s); err != nil {
		return nil, "", nil, errors.Join(err, closeAll())
	}
	return s, schema, closeAll, nil
}

// rawPGConn opens a connection of a read limit's own to the server of
// -postgres-dsn and runs settings on it.
func (r *runner) rawPGConn(ctx context.Context, settings ...string) (*pgx.Conn, error) {
	cfg, err := pgConnConfig(r.cfg.PostgresDSN)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: raw postgres read: %w", err)
	}
	for _, s := range settings {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, errors.Join(fmt.Errorf("bench: raw postgres read: %s: %w", s, err), conn.Close(ctx))
		}
	}
	return conn, nil
}

// rawPGScan returns the limit of the PostgreSQL whole-log reads: one
// query (rawPGScanSQL) over the store's schema on conn, streamed, no
// pages; per row it checks that the position is the previous one's plus
// one and copies the raw data value into one reused buffer (no decoding).
func rawPGScan(ctx context.Context, conn *pgx.Conn, schema string) func(yield func(int) bool) error {
	sql := fmt.Sprintf(rawPGScanSQL, pgx.Identifier{schema}.Sanitize())
	var buf []byte
	return func(yield func(int) bool) error {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return err
		}
		defer rows.Close()
		next := uint64(1)
		for rows.Next() {
			v := rows.RawValues()
			if len(v[0]) != 8 {
				return fmt.Errorf("raw postgres: row %d holds a position of %d bytes", next, len(v[0]))
			}
			if p := binary.BigEndian.Uint64(v[0]); p != next {
				return fmt.Errorf("raw postgres: row %d holds position %d: the plan did not read in position order", next, p)
			}
			next++
			buf = append(buf[:0], v[9]...)
			if !yield(len(buf)) {
				break
			}
		}
		rows.Close()
		return rows.Err()
	}
}

// rawPGLoad returns the PostgreSQL limit's load operation on conn (one
// goroutine drives it): one query of the stream's events (rawPGStreamSQL)
// or, with snap, one batch of the snapshot's row (its body copied, its
// version read) and the events after it (rawPGTailSQL), one round trip
// either way; each event's raw data value is copied into one reused
// buffer and the rows are counted.
func rawPGLoad(conn *pgx.Conn, schema string, size int, snap bool, aggs int, id func(int) string) func(context.Context, int) error {
	q := pgx.Identifier{schema}.Sanitize()
	events, snaps, tail := fmt.Sprintf(rawPGStreamSQL, q), fmt.Sprintf(rawPGSnapSQL, q), fmt.Sprintf(rawPGTailSQL, q)
	typ := []byte(streamType)
	var next atomic.Int64
	var buf []byte
	// count copies the data of each row of rows and counts them.
	count := func(rows pgx.Rows) (int, error) {
		n := 0
		for rows.Next() {
			buf = append(buf[:0], rows.RawValues()[9]...)
			n++
		}
		return n, rows.Err()
	}
	return func(ctx context.Context, _ int) error {
		sid := id(int(next.Add(1)) % aggs)
		if !snap {
			rows, err := conn.Query(ctx, events, typ, []byte(sid), int64(0), int64(size)+1)
			if err != nil {
				return err
			}
			n, err := count(rows)
			if err == nil && n != size {
				err = fmt.Errorf("raw postgres: read %d events of %s, want %d", n, sid, size)
			}
			return err
		}
		b := &pgx.Batch{}
		b.Queue(snaps, typ, []byte(sid))
		b.Queue(tail, typ, []byte(sid), int64(size)+1)
		br := conn.SendBatch(ctx, b)
		after, found := uint64(0), false
		rows, err := br.Query()
		if err == nil {
			for rows.Next() {
				v := rows.RawValues()
				if len(v[0]) != 8 {
					rows.Close()
					return errors.Join(fmt.Errorf("raw postgres: snapshot of %s: version of %d bytes", sid, len(v[0])), br.Close())
				}
				after = binary.BigEndian.Uint64(v[0])
				buf = append(buf[:0], v[4]...)
				found = true
			}
			err = rows.Err()
		}
		if err == nil && !found {
			err = fmt.Errorf("raw postgres: no snapshot of %s", sid)
		}
		if err == nil {
			rows, err = br.Query()
		}
		if err == nil {
			var n int
			if n, err = count(rows); err == nil && n != size-int(after) {
				err = fmt.Errorf("raw postgres: read %d events of %s after version %d, want %d", n, sid, after, size-int(after))
			}
		}
		return errors.Join(err, br.Close())
	}
}
