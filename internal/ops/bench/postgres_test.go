package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/jackc/pgx/v5"
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
