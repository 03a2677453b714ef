package postgres

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// TestShredPurge shows what forgetting a subject removes from PostgreSQL
// and what the documented purge (PurgeForgottenKeys: VACUUM FULL of the
// key tables) adds: the
// key's row is gone at once; the table's file no longer holds the key's
// bytes after VACUUM FULL. The WAL segments that recorded the key's
// INSERT are only counted (they hold it until PostgreSQL recycles and
// overwrites them; archives and backups keep it): see docs/guide.md. The
// file checks read server files, which needs a superuser (the throwaway
// test server's user is one).
func TestShredPurge(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := runtime.StreamID{Type: "Person", ID: "p1"}
	b := wire.AppendMapHeader(nil, 1)
	b, err := runtime.NewSealer(ctx, s, st).String(wire.AppendString(b, "Email"), "Email", "ada", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: []runtime.EventData{{Name: "Registered", Schema: 1, Data: b}}}); err != nil {
		t.Fatal(err)
	}
	key, err := s.LoadSubjectKey(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{s.opt.schema, "subject_keys"}.Sanitize()
	holds := func(what string) bool {
		t.Helper()
		var data []byte
		if err := s.pool.QueryRow(ctx, `SELECT pg_read_binary_file(pg_relation_filepath($1::regclass))`, table).Scan(&data); err != nil {
			t.Fatalf("reading the file of %s: %v", table, err)
		}
		found := bytes.Contains(data, key.Key[:])
		t.Logf("%s: the file of %s (%d bytes) holds the key: %v", what, table, len(data), found)
		return found
	}
	var super bool
	if err := s.pool.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		t.Fatal(err)
	}
	if super {
		if _, err := s.pool.Exec(ctx, `CHECKPOINT`); err != nil {
			t.Fatal(err)
		}
		if !holds("before forgetting") {
			t.Fatal("the key is not in the table's file before forgetting: the check below proves nothing")
		}
	}

	if _, err := lifecycle.ForgetSubject(ctx, s, "ada"); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("rows left in %s: %d, %v", table, rows, err)
	}
	if !super {
		t.Logf("current_user is no superuser: the files of the server cannot be read, only the row's deletion was checked")
		return
	}
	if _, err := s.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	holds("after forgetting (the dead tuple, until a purge)")
	if _, err := s.pool.Exec(ctx, `VACUUM `+table); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	holds("after plain VACUUM (space freed, not necessarily overwritten)")
	if err := s.PurgeForgottenKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if holds("after PurgeForgottenKeys (VACUUM FULL)") {
		t.Error("the table's file holds the forgotten key after VACUUM FULL")
	}
	// The WAL: count the newest segments that still hold the key.
	rowsWAL, err := s.pool.Query(ctx, `SELECT name FROM pg_ls_waldir() ORDER BY modification DESC LIMIT 4`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rowsWAL, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	inWAL := 0
	for _, n := range names {
		var seg []byte
		if err := s.pool.QueryRow(ctx, `SELECT pg_read_binary_file('pg_wal/' || $1)`, n).Scan(&seg); err != nil {
			continue // a segment recycled meanwhile
		}
		if bytes.Contains(seg, key.Key[:]) {
			inWAL++
		}
	}
	t.Logf("WAL segments (of the newest %d) still holding the forgotten key: %d (until recycled and overwritten; see docs/guide.md)", len(names), inWAL)
}
