package bench

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgresAppendCase runs one PostgreSQL append case with a DSN that
// carries pool_max_conns: the store's rows stand beside the raw INSERT
// limit row of the same run, and every schema the run created is dropped
// (pool settings used to break that cleanup).
func TestPostgresAppendCase(t *testing.T) {
	dsn := pgtest.Database(t)
	switch {
	case !strings.Contains(dsn, "://"):
		dsn += " pool_max_conns=3" // keyword/value form, as pgtest's own server gives
	case strings.Contains(dsn, "?"):
		dsn += "&pool_max_conns=3"
	default:
		dsn += "?pool_max_conns=3"
	}
	rep, err := Run(t.Context(), Config{Quick: true, Scale: 0.01, Stores: []string{"postgres"}, PostgresDSN: dsn,
		Dir: t.TempDir(), Only: regexp.MustCompile(`^append/batch=(1|100)/writers=8$`)})
	if err != nil {
		t.Fatal(err)
	}
	// Per batch size: the pgbench-style limit, the grouped one, the binary
	// one (batches only), and the store's row related to each.
	type seen struct{ limit, grouped, binary, store bool }
	got := map[int]*seen{1: {}, 100: {}}
	for _, r := range rep.Rows {
		g := got[r.Batch]
		if g == nil || r.Writers != 8 {
			continue
		}
		ran := r.Ops > 0 && r.EventsPerSec > 0
		switch {
		case r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres grouped"):
			g.grouped = ran
		case r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres binary"):
			g.binary = ran
		case r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres ("):
			g.limit = ran
		case r.Subject == "postgres store":
			g.store = r.Limit != "" && strings.HasPrefix(r.Limit, "raw postgres (") && r.Ratio > 0 &&
				strings.Contains(r.Note, "x raw postgres grouped") &&
				strings.Contains(r.Note, "x raw postgres binary") == (r.Batch > 1)
		}
	}
	for batch, g := range got {
		if !g.limit || !g.grouped || g.binary != (batch > 1) || !g.store {
			t.Errorf("batch %d: %+v in rows %+v: want a raw postgres limit row, a grouped one, a binary one for batches, and a postgres store row related to each", batch, *g, rep.Rows)
		}
	}
	assertNoSchemasLeft(t, dsn)
}

// assertNoSchemasLeft fails t if the database of dsn holds a schema a
// benchmark created.
func assertNoSchemasLeft(t *testing.T, dsn string) {
	t.Helper()
	cfg, err := pgConnConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left []string
	rows, err := conn.Query(t.Context(), `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cqrsbench%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		left = append(left, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("schemas left behind: %v", left)
	}
}

// TestRawGroupedBatches runs the grouped PostgreSQL limit for batches on a
// real server: one writer alone (a synchronous INSERT, no flush), then
// several at once (groups committed asynchronously, then flushed). Every
// writer's rows carry its stream id, versions 1..n in order, the sample
// data and name, distinct event ids and one clock reading per append; the
// group's INSERT runs with synchronous_commit off in its transaction, and
// only there.
func TestRawGroupedBatches(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Database(t)
	const batch, writers, ops = 3, 4, 6
	r := &runner{cfg: Config{PostgresDSN: dsn, Progress: nopProgress{}}}
	side, err := r.rawPostgresGroupedAppend(ctx, "append/batch=3/writers=4", batch, writers)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := side.close(); err != nil {
			t.Error(err)
		}
	}()
	cfg, err := pgConnConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cqrsbench_rawg%'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	schema = pgx.Identifier{schema}.Sanitize()
	flushes := func() int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM `+schema+`.flushes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for range 2 {
		if err := side.op(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := flushes(); n != 0 {
		t.Errorf("a writer alone flushed %d times, want 0 (its INSERT commits synchronously)", n)
	}
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for range ops {
				if err := side.op(ctx, w); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT convert_from(stream_id, 'UTF8'), count(*), min(version), max(version), count(DISTINCT version),
	count(DISTINCT event_id), count(event_id), bool_and(stream_type = $1 AND name = $2 AND schema = 1 AND data = $3 AND time_s > 0),
	count(DISTINCT ((version - 1) / `+fmt.Sprint(batch)+`, time_s, time_ns))
FROM `+schema+`.events GROUP BY stream_id ORDER BY stream_id`, []byte(streamType), []byte(eventName), samplePayload())
	if err != nil {
		t.Fatal(err)
	}
	type stream struct {
		id                                 string
		n, first, last, versions, ids, set int64
		same                               bool
		clocks                             int64
	}
	var got []stream
	for rows.Next() {
		var s stream
		if err := rows.Scan(&s.id, &s.n, &s.first, &s.last, &s.versions, &s.ids, &s.set, &s.same, &s.clocks); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != writers {
		t.Fatalf("%d streams: %+v, want %d", len(got), got, writers)
	}
	for w, s := range got {
		appends := int64(ops)
		if w == 0 {
			appends += 2
		}
		n := appends * batch
		want := stream{id: fmt.Sprintf("writer-%d", w), n: n, first: 1, last: n, versions: n, ids: n, set: n, same: true, clocks: appends}
		if s != want {
			t.Errorf("stream %d: %+v, want %+v", w, s, want)
		}
	}
	// One commit id per group, its rows numbered from 1 (the store's key).
	var total, commits, badCommits int64
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT event_id), count(DISTINCT commit_id),
	(SELECT count(*) FROM (SELECT FROM `+schema+`.events GROUP BY commit_id HAVING min(off) <> 1 OR max(off) <> count(*)) b)
FROM `+schema+`.events`).Scan(&total, &commits, &badCommits); err != nil {
		t.Fatal(err)
	}
	if want := int64((ops*writers + 2) * batch); total != want {
		t.Errorf("%d distinct event ids in all, want %d", total, want)
	}
	if commits < 2 || commits > ops*writers+2 || badCommits != 0 {
		t.Errorf("%d commit ids (want 2 to %d, one per group), %d of them not numbered 1..n", commits, ops*writers+2, badCommits)
	}

	// The group's INSERT commits asynchronously: synchronous_commit is
	// off in its transaction after it ran; the lone INSERT leaves it on.
	insert, async, _ := rawGroupStatements(schema)
	for _, tc := range []struct {
		name, sql, want string
	}{{"group", async, "off"}, {"alone", insert, "on"}} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, tc.sql, []byte(streamType), []byte(eventName), [][]byte{[]byte("check")}, []int64{100}, []int64{1}, []int32{2},
			[]int32{1}, [][]byte{samplePayload()}, []pgtype.UUID{{Bytes: [16]byte{1}, Valid: true}})
		if err != nil {
			t.Fatal(err)
		}
		var sc string
		if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if sc != tc.want {
			t.Errorf("%s INSERT: synchronous_commit %s in its transaction, want %s", tc.name, sc, tc.want)
		}
	}
}
