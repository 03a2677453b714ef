package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// TestOpenConcurrently opens one fresh schema from many goroutines at once:
// the advisory lock lets exactly one of them create it, and all succeed.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(t.Context(), pgtest.DSN(), WithSchema(schema), WithMaxConns(2))
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	var rows, ver int
	q := `SELECT count(*), max(version) FROM ` + pgx.Identifier{schema, "schema_version"}.Sanitize()
	s := openIn(t, schema)
	if err := s.pool.QueryRow(t.Context(), q).Scan(&rows, &ver); err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion || ver != SchemaVersion {
		t.Errorf("schema_version has %d rows, max %d; want %d, %d", rows, ver, SchemaVersion, SchemaVersion)
	}
}

// TestSchemaNewerRefused records a future schema version and checks that
// Open refuses the schema with a *SchemaVersionError, leaving it intact.
func TestSchemaNewerRefused(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	st := runtime.StreamID{Type: "T", ID: "1"}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: st, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}
	schema := s.opt.schema
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` (version) VALUES ($1)`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(t.Context(), pgtest.DSN(), WithSchema(schema))
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != SchemaVersion+1 || sv.Supported != SchemaVersion || sv.Schema != schema {
		t.Fatalf("Open of a newer schema: %v, want *SchemaVersionError{Found: %d}", err, SchemaVersion+1)
	}
	for _, want := range []string{schema, fmt.Sprintf("version %d, newer than version %d", SchemaVersion+1, SchemaVersion), "never migrated down", "run that version or newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestOpenErrors checks that Open fails fast on bad servers and DSNs, naming
// the host and the cause, never the password.
func TestOpenErrors(t *testing.T) {
	pgtest.Require(t)
	const secret = "s3cr3t-pw"
	tests := []struct {
		name    string
		dsn     string
		want    []string
		invalid bool
	}{
		{"Unreachable", "postgres://alice:" + secret + "@127.0.0.1:1/db?connect_timeout=10", []string{"127.0.0.1", "connect"}, false},
		{"MissingDatabase", pgtest.WithDatabase(pgtest.DSN(), "no_such_db_"+secret), []string{"does not exist"}, false},
		{"BadDSN", "postgres://alice:" + secret + "@127.0.0.1:notaport/db", []string{"DSN"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if tc.name != "MissingDatabase" && strings.Contains(msg, secret) {
				t.Errorf("error %q reveals the password", msg)
			}
			if errors.Is(err, runtime.ErrInvalid) != tc.invalid {
				t.Errorf("errors.Is(%v, ErrInvalid) = %v, want %v", err, !tc.invalid, tc.invalid)
			}
		})
	}
	if _, err := Open(t.Context(), pgtest.DSN(), WithSchema("")); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Open with an empty schema name: %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Open(ctx, pgtest.DSN()); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestCorruptRecords damages stored rows behind the store's back: reads
// return a *runtime.DecodeError naming the stream, version and position of
// the bad row after yielding the good ones, and never panic.
func TestCorruptRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, set string
	}{
		{"MetadataTruncated", `metadata = '\x0201'::bytea`},
		{"MetadataTrailing", `metadata = '\x0101610162ff'::bytea`},
		{"MetadataHugeCount", `metadata = '\xffffffffffffffffff01'::bytea`},
		{"MetadataDuplicateKey", `metadata = '\x020161016201610163'::bytea`},
		{"MetadataEmptyCount", `metadata = '\x00'::bytea`},
		{"Nanoseconds", `time_ns = 2000000000`},
		{"NegativeSchema", `schema = -1`},
		{"EmptyName", `name = ''::bytea`},
	}
	s := newStore(t)
	for _, tc := range tests {
		st := runtime.StreamID{Type: "T", ID: tc.name}
		res, err := s.Append(t.Context(), runtime.AppendRequest{Stream: st, Events: storetest.Events(3)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(t.Context(), `UPDATE `+pgx.Identifier{s.opt.schema, "events"}.Sanitize()+` SET `+tc.set+
			` WHERE stream_id = $1 AND version = 2`, []byte(st.ID)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		check := func(t *testing.T, what string, recs []runtime.Record, err error) {
			var de *runtime.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, runtime.ErrCorrupt) {
				t.Fatalf("%s: %d records, %v; want a *DecodeError", what, len(recs), err)
			}
			if de.Stream != st || de.Version != 2 || de.Position != res.FirstPosition+1 {
				t.Errorf("%s: DecodeError names %s version %d position %d; want %s version 2 position %d",
					what, de.Stream, de.Version, de.Position, st, res.FirstPosition+1)
			}
			if len(recs) != 1 || recs[0].Version != 1 {
				t.Errorf("%s: %d good records before the bad one, want 1", what, len(recs))
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			recs, err := storetest.Collect(s.ReadStream(t.Context(), st, 0))
			check(t, "ReadStream", recs, err)
			recs, err = storetest.Collect(s.ReadAll(t.Context(), res.FirstPosition-1))
			check(t, "ReadAll", recs, err)
		})
	}
	t.Run("Snapshot", func(t *testing.T) {
		st := runtime.StreamID{Type: "T", ID: "snap"}
		if err := s.SaveSnapshot(t.Context(), runtime.Snapshot{Stream: st, Version: 3, Schema: "h", Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(t.Context(), `UPDATE `+pgx.Identifier{s.opt.schema, "snapshots"}.Sanitize()+` SET version = -3`); err != nil {
			t.Fatal(err)
		}
		_, err := s.LoadSnapshot(t.Context(), st)
		var de *runtime.DecodeError
		if !errors.As(err, &de) || de.Stream != st || de.What != "snapshot" {
			t.Errorf("LoadSnapshot of a corrupt row: %v, want a *DecodeError naming %s", err, st)
		}
	})
}
