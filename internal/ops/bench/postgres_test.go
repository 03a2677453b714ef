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
		Dir: t.TempDir(), Only: regexp.MustCompile(`^append/batch=1/writers=8$`)})
	if err != nil {
		t.Fatal(err)
	}
	var limit, grouped, store bool
	for _, r := range rep.Rows {
		switch {
		case r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres grouped"):
			grouped = r.Ops > 0 && r.EventsPerSec > 0 && r.Writers == 8
		case r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres"):
			limit = r.Ops > 0 && r.EventsPerSec > 0 && r.Writers == 8
		case r.Subject == "postgres store":
			store = r.Limit != "" && strings.HasPrefix(r.Limit, "raw postgres (") && r.Ratio > 0 &&
				strings.Contains(r.Note, "x raw postgres grouped")
		}
	}
	if !limit || !grouped || !store {
		t.Errorf("rows %+v: want a raw postgres limit row, a grouped one, and a postgres store row related to both", rep.Rows)
	}
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
