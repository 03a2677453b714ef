package bench

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestPostgresReadCases runs the PostgreSQL whole-log read and load cases:
// each has a raw postgres limit row that ran, the store's rows stand
// beside it (read/subscribe beside ReadAll, as for the other stores), and
// every schema the run created is dropped.
func TestPostgresReadCases(t *testing.T) {
	dsn := pgtest.Database(t)
	rep, err := Run(t.Context(), Config{Quick: true, Scale: 0.01, Stores: []string{"postgres"}, PostgresDSN: dsn,
		Dir: t.TempDir(), Only: regexp.MustCompile(`^(read/(all|subscribe)|load/events=(10|100)/(no-)?snapshot|load/spread/events=100)$`)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []string{"read/all", "load/events=10/no-snapshot", "load/events=10/snapshot",
		"load/events=100/no-snapshot", "load/events=100/snapshot", "load/spread/events=100"}
	limits := map[string]string{} // case -> the limit row's subject
	for _, r := range rep.Rows {
		ran := r.Ops > 0 && (r.EventsPerSec > 0 || r.Latency != nil && r.Latency.P50 > 0)
		if r.Kind == KindLimit && strings.HasPrefix(r.Subject, "raw postgres (") && ran {
			limits[r.Case] = r.Subject
		}
	}
	related := func(c, subject, limit string) {
		t.Helper()
		for _, r := range rep.Rows {
			if r.Case == c && r.Subject == subject {
				if limit == "" || r.Limit != limit || r.Ratio <= 0 {
					t.Errorf("%s: row %q stands beside %q at %.2fx, want beside %q", c, subject, r.Limit, r.Ratio, limit)
				}
				return
			}
		}
		t.Errorf("%s: no row %q in %+v", c, subject, rep.Rows)
	}
	for _, c := range cases {
		if limits[c] == "" {
			t.Errorf("%s: no raw postgres limit row that ran", c)
		}
		if strings.HasPrefix(c, "read/") {
			related(c, "postgres store (ReadAll)", limits[c])
			continue
		}
		related(c, "postgres store (ReadStream, no decoding)", limits[c])
		related(c, "postgres repository Load (generated decode + apply)", limits[c])
	}
	related("read/subscribe", "postgres store (runtime.Subscribe catch-up)", "postgres store (ReadAll)")
	assertNoSchemasLeft(t, dsn)
}

// TestRawPGScanChecksOrder runs the PostgreSQL whole-log limit's scan on
// a schema whose event_log view yields positions 1, 2, 3 in commit order,
// then on one that yields 1, 3, 2: the first scan copies every row's data,
// the second fails at the row out of position order (a plan that does not
// read in position order must fail the run, not be measured).
func TestRawPGScanChecksOrder(t *testing.T) {
	dsn := pgtest.Database(t)
	r := &runner{cfg: Config{PostgresDSN: dsn}}
	ctx := t.Context()
	conn, err := r.rawPGConn(ctx, rawPGScanSettings...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, tc := range []struct {
		name    string
		order   []int // positions by commit_last
		wantErr bool
	}{
		{"ordered", []int{1, 2, 3}, false},
		{"unordered", []int{1, 3, 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema := "cqrsbench_scan_" + tc.name
			t.Cleanup(func() {
				if err := dropSchema(dsn, schema); err != nil {
					t.Error(err)
				}
			})
			var values []string
			for i, p := range tc.order {
				values = append(values, fmt.Sprintf(`(%d::bigint, 'bank.account'::bytea, 'a'::bytea, %d::bigint, 'e'::bytea, 1::bigint,
	0::bigint, 0, NULL::bytea, '\x0102'::bytea, NULL::uuid, %d::bigint)`, p, p, i+1))
			}
			q := pgx.Identifier{schema}.Sanitize()
			if _, err := conn.Exec(ctx, "CREATE SCHEMA "+q+"; CREATE VIEW "+q+`.event_log (position, stream_type, stream_id, version,
	name, schema, time_s, time_ns, metadata, data, event_id, commit_last) AS VALUES `+strings.Join(values, ", ")); err != nil {
				t.Fatal(err)
			}
			var n, bytes int
			err := rawPGScan(ctx, conn, schema)(func(size int) bool {
				n, bytes = n+1, bytes+size
				return true
			})
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "row 2 holds position 3:")):
				t.Errorf("scan: %v after %d rows, want an error at row 2 holding position 3", err, n)
			case !tc.wantErr && (err != nil || n != 3 || bytes != 6):
				t.Errorf("scan: %v after %d rows of %d bytes, want 3 rows of 6 bytes", err, n, bytes)
			}
		})
	}
}
