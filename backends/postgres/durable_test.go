package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/jackc/pgx/v5"
)

// commitUnflushed calls append_events on a connection of its own, as an
// appender does, and then never flushes: the state left by an appender that
// died between its (asynchronous) commit and its flush.
func commitUnflushed(t *testing.T, s *Store, st runtime.StreamID, expected uint64, n int) {
	t.Helper()
	conn, err := pgx.ConnectConfig(t.Context(), s.connCfg.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var out appendOut
	req := runtime.AppendRequest{Stream: st, Expected: expected, Events: storetest.Events(n)}
	if err := conn.QueryRow(t.Context(), s.q.appendFn, s.appendArgs(req)...).Scan(out.dest()...); err != nil {
		t.Fatal(err)
	}
	if out.status != appendOK {
		t.Fatalf("append_events answered status %d", out.status)
	}
}

// TestUnflushedCommitNotExposed checks that readers follow the durable
// head: a committed append that no flush has covered yet is invisible to
// Head, ReadAll and Wait, until Flush, a later append or a Wait poll
// covers it. That poll is the bound on how long an appender that died
// before its flush hides the positions it committed.
func TestUnflushedCommitNotExposed(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	st := runtime.StreamID{Type: "T", ID: "u"}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}
	commitUnflushed(t, s, st, 1, 2)

	if h, err := s.Head(t.Context()); err != nil || h != 1 {
		t.Fatalf("Head with positions 2-3 committed, not flushed = %d, %v; want 1", h, err)
	}
	if recs, err := storetest.Collect(s.ReadAll(t.Context(), 0)); err != nil || len(recs) != 1 {
		t.Fatalf("ReadAll = %d records, %v; want 1", len(recs), err)
	}
	// A waiter that is woken (here by nothing: no NOTIFY was sent) re-reads
	// the durable head; only its poll flushes.
	waiter := openIn(t, s.opt.schema, WithPollInterval(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	h, err := waiter.Wait(ctx, 1)
	if err != nil || h != 3 {
		t.Fatalf("Wait(after 1) = %d, %v; want 3 after a poll flushed", h, err)
	}

	// Flush covers an unflushed commit too.
	commitUnflushed(t, s, st, 3, 1)
	if h, err := s.Head(t.Context()); err != nil || h != 3 {
		t.Fatalf("Head before Flush = %d, %v; want 3", h, err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(t.Context()); err != nil || h != 4 {
		t.Fatalf("Head after Flush = %d, %v; want 4", h, err)
	}
	// And so does the next append, which ends at 5.
	commitUnflushed(t, s, st, 4, 1)
	res, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "v"}, Events: storetest.Events(1)})
	if err != nil || res.LastPosition != 6 {
		t.Fatalf("append = %+v, %v; want position 6", res, err)
	}
	if h, err := s.Head(t.Context()); err != nil || h != 6 {
		t.Fatalf("Head after a later append = %d, %v; want 6", h, err)
	}
}

// TestLongTransactionDoesNotStall holds, on second connections, two
// unrelated transactions open for the whole test: one that has written a
// row (it has a transaction id, so it holds the database's xmin back) and
// one REPEATABLE READ transaction holding an old snapshot. The store takes
// no horizon from transaction ids, so neither delays anything: appends
// from another store are acknowledged and a waiter, woken by NOTIFY
// alone, sees each one.
func TestLongTransactionDoesNotStall(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	writer := openIn(t, schema)
	waiter := openIn(t, schema, WithPollInterval(time.Hour))
	ctx := t.Context()

	other := pgtest.Schema(t)
	if err := pgtest.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{other}.Sanitize()+`; CREATE TABLE `+
		pgx.Identifier{other, "x"}.Sanitize()+` (n int)`); err != nil {
		t.Fatal(err)
	}
	hold := func(sql ...string) *pgx.Conn {
		conn, err := pgx.ConnectConfig(ctx, writer.connCfg.Copy())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		for _, q := range sql {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		return conn
	}
	holder := hold("BEGIN", `INSERT INTO `+pgx.Identifier{other, "x"}.Sanitize()+` VALUES (1)`)
	hold("BEGIN ISOLATION LEVEL REPEATABLE READ", `SELECT count(*) FROM pg_class`)
	var xid uint64
	if err := holder.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	st := runtime.StreamID{Type: "T", ID: "long"}
	for round := range uint64(5) {
		got := make(chan error, 1)
		go func() {
			h, err := waiter.Wait(ctx, round)
			if err == nil && h != round+1 {
				err = fmt.Errorf("Wait(after %d) = %d, want %d", round, h, round+1)
			}
			got <- err
		}()
		if _, err := writer.Append(ctx, runtime.AppendRequest{Stream: st, Expected: round, Events: storetest.Events(1)}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	// The open transaction did hold the horizon back meanwhile.
	var xmin uint64
	if err := writer.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
		t.Fatal(err)
	}
	if xmin > xid {
		t.Errorf("xmin is %d, past the open transaction's id %d: it did not hold the horizon", xmin, xid)
	}
	if recs, err := storetest.Collect(waiter.ReadAll(ctx, 0)); err != nil || len(recs) != 5 {
		t.Fatalf("ReadAll = %d records, %v; want 5", len(recs), err)
	}
}

// TestMigrateFromVersion1 builds a schema at version 1 holding events
// written the version-1 way (synchronous commits, log_head only), then
// opens it: the migration keeps every event readable and durable, appends
// continue from the next position, and Verify finds nothing wrong.
func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	schema, S := schemaAtVersion(t, 1)
	if err := pgtest.Exec(t.Context(), `INSERT INTO `+S+`.streams VALUES ('\x54'::bytea, '\x61'::bytea, 2), ('\x54'::bytea, '\x62'::bytea, 1);
INSERT INTO `+S+`.events VALUES
	(1, '\x54'::bytea, '\x61'::bytea, 1, '\x45'::bytea, 1, 1700000000, 0, NULL, '\x01'::bytea),
	(2, '\x54'::bytea, '\x62'::bytea, 1, '\x45'::bytea, 1, 1700000000, 0, NULL, '\x02'::bytea),
	(3, '\x54'::bytea, '\x61'::bytea, 2, '\x45'::bytea, 1, 1700000000, 0, NULL, '\x03'::bytea);
UPDATE `+S+`.log_head SET position = 3;`); err != nil {
		t.Fatal(err)
	}
	s := openIn(t, schema)
	var ver int
	if err := s.pool.QueryRow(t.Context(), `SELECT max(version) FROM `+S+`.schema_version`).Scan(&ver); err != nil || ver != SchemaVersion {
		t.Fatalf("schema version after Open = %d, %v; want %d", ver, err, SchemaVersion)
	}
	if h, err := s.Head(t.Context()); err != nil || h != 3 {
		t.Fatalf("Head after migrating = %d, %v; want 3", h, err)
	}
	recs, err := storetest.Collect(s.ReadAll(t.Context(), 0))
	if err != nil || len(recs) != 3 || recs[2].Stream.ID != "a" || recs[2].Version != 2 {
		t.Fatalf("ReadAll after migrating = %v, %v; want the 3 version-1 events", recs, err)
	}
	for _, r := range recs {
		if !r.EventID.IsZero() {
			t.Errorf("%s v%d written before event ids: id %s, want zero", r.Stream, r.Version, r.EventID)
		}
	}
	res, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "a"}, Expected: 2, Events: storetest.Events(1)})
	if err != nil || res.FirstPosition != 4 || res.FirstVersion != 3 {
		t.Fatalf("append after migrating = %+v, %v; want version 3 at position 4", res, err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || len(rep.Problems) != 0 || rep.Head != 4 {
		t.Fatalf("Verify after migrating = %+v, %v; want head 4 and no problems", rep, err)
	}
	// Opening again is a no-op.
	s.Close()
	s2 := openIn(t, schema)
	if h, err := s2.Head(t.Context()); err != nil || h != 4 {
		t.Fatalf("Head after reopening = %d, %v; want 4", h, err)
	}
}

// TestMigrateFromVersion2 builds a schema at version 2 holding events
// written by the version-2 append functions, then opens it: the old events
// read back with a zero event id, new appends store theirs, the version-2
// function (dropped at version 8) fails and writes nothing, and Verify
// finds nothing wrong.
func TestMigrateFromVersion2(t *testing.T) {
	t.Parallel()
	schema, S := schemaAtVersion(t, 2)
	// appendV2 appends one event to T/a the way a version-2 process does,
	// and makes it durable as its flush would.
	appendV2 := func(expected int64) error {
		t.Helper()
		return pgtest.Exec(t.Context(), `SELECT status FROM `+S+`.append_events('\x54'::bytea, '\x61'::bytea, `+fmt.Sprint(expected)+`, NULL,
	ARRAY['\x45'::bytea], ARRAY[1::bigint], ARRAY[1700000000::bigint], ARRAY[0], ARRAY[NULL::bytea], ARRAY['\x01'::bytea],
	1700000000, 0, 1000000);
INSERT INTO `+S+`.log_durable (pid, position) SELECT 0, position FROM `+S+`.log_head
ON CONFLICT (pid) DO UPDATE SET position = excluded.position;`)
	}
	for _, expected := range []int64{0, 1} {
		if err := appendV2(expected); err != nil {
			t.Fatal(err)
		}
	}
	s := openIn(t, schema)
	var ver int
	if err := s.pool.QueryRow(t.Context(), `SELECT max(version) FROM `+S+`.schema_version`).Scan(&ver); err != nil || ver != SchemaVersion {
		t.Fatalf("schema version after Open = %d, %v; want %d", ver, err, SchemaVersion)
	}
	given := runtime.NewEventID()
	evs := storetest.Events(2)
	evs[0].ID = given
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "a"}, Expected: 2, Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := appendV2(4); err == nil { // a process still running the version-2 code
		t.Error("the version-2 append function still appends after version 8 dropped it")
	}
	recs, err := storetest.Collect(s.ReadStream(t.Context(), runtime.StreamID{Type: "T", ID: "a"}, 0))
	if err != nil || len(recs) != 4 {
		t.Fatalf("ReadStream after migrating = %d records, %v; want 4", len(recs), err)
	}
	for i, r := range recs {
		switch zero := r.EventID.IsZero(); {
		case i < 2 && !zero:
			t.Errorf("v%d written by the version-2 function: id %s, want zero", r.Version, r.EventID)
		case i == 2 && r.EventID != given:
			t.Errorf("v%d: id %s, want the given %s", r.Version, r.EventID, given)
		case i == 3 && (zero || r.EventID == given):
			t.Errorf("v%d: id %s, want a new one", r.Version, r.EventID)
		}
	}
	rep, err := s.Verify(t.Context())
	if err != nil || len(rep.Problems) != 0 || rep.Head != 4 {
		t.Fatalf("Verify after migrating = %+v, %v; want head 4 and no problems", rep, err)
	}
}

// TestAppendRefusals checks the answers the append functions give besides
// success, on every path: a group (the default for unkeyed appends), a
// transaction of its own flushed in its pipeline, and one that waits for
// the flusher.
func TestAppendRefusals(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	st := runtime.StreamID{Type: "T", ID: "r"}
	ctx := t.Context()
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(2), IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"group", "self", "shared"} {
		switch path {
		case "self":
			s.groupMax = 0
		case "shared":
			s.selfFlushMax = 0 // every append waits for the flusher
		}

		_, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 1, Events: storetest.Events(1)})
		var ce *runtime.ConflictError
		if !errors.As(err, &ce) || ce.Actual != 2 || ce.Expected != 1 {
			t.Errorf("%s: stale append: %v, want a conflict at version 2", path, err)
		}
		// A retry of the keyed append, with its stale expected version, is a duplicate.
		_, err = s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(2), IdempotencyKey: "k"})
		var de *runtime.DuplicateError
		if !errors.As(err, &de) || de.Existing.Version != 2 || de.Existing.Position != 2 || de.Existing.Stream != st {
			t.Errorf("%s: retried keyed append: %v, want a duplicate of version 2 at position 2", path, err)
		}
		_, err = s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "none"}, Expected: runtime.StreamExists, Events: storetest.Events(1)})
		if !errors.As(err, &ce) || ce.Actual != 0 {
			t.Errorf("%s: StreamExists on a missing stream: %v, want a conflict at version 0", path, err)
		}

	}
	if h, err := s.Head(ctx); err != nil || h != 2 {
		t.Fatalf("Head after refusals = %d, %v; want 2", h, err)
	}
}

// TestAppendGroup calls append_group directly with a group holding two
// appends to one stream, a conflict, a StreamExists on a missing stream and
// a new stream: each is answered on its own, and the accepted ones get
// consecutive positions in the group's order.
func TestAppendGroup(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	a, b := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "b"}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: a, Expected: runtime.NoStream, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}
	reqs := []runtime.AppendRequest{
		{Stream: a, Expected: 1, Events: storetest.Events(2)},                                                       // ok: versions 2-3, positions 2-3
		{Stream: a, Expected: 3, Events: storetest.Events(1)},                                                       // ok after the first: version 4, position 4
		{Stream: a, Expected: 1, Events: storetest.Events(1)},                                                       // conflict at 4
		{Stream: runtime.StreamID{Type: "T", ID: "c"}, Expected: runtime.StreamExists, Events: storetest.Events(1)}, // conflict at 0
		{Stream: b, Expected: runtime.NoStream, Events: storetest.Events(1)},                                        // ok: version 1, position 5
	}
	var group []*groupReq
	for _, r := range reqs {
		group = append(group, s.newGroupReq(r))
	}
	commits := 0
	outs, retry, err := s.appendGroupTx(t.Context(), group, func() { commits++ })
	if err != nil || retry {
		t.Fatalf("append_group: %v (retry %v)", err, retry)
	}
	if commits != 1 {
		t.Errorf("committed called %d times, want once", commits)
	}
	want := []appendOut{
		{status: appendOK, base: 1, actual: 1},
		{status: appendOK, base: 3, actual: 3},
		{status: appendConflict, actual: 4},
		{status: appendConflict, actual: 0},
		{status: appendOK, base: 4, actual: 0},
	}
	for i, w := range want {
		if o := outs[i]; o.status != w.status || o.actual != w.actual || (w.status == appendOK && o.base != w.base) {
			t.Errorf("append %d: status %d base %d actual %d, want %d %d %d", i, o.status, o.base, o.actual, w.status, w.base, w.actual)
		}
	}
	recs, err := storetest.Collect(s.ReadAll(t.Context(), 0))
	if err != nil || len(recs) != 5 {
		t.Fatalf("ReadAll = %d records, %v; want 5", len(recs), err)
	}
	for i, w := range []string{`T/"a"@1`, `T/"a"@2`, `T/"a"@3`, `T/"a"@4`, `T/"b"@1`} {
		if got := fmt.Sprintf("%s@%d", recs[i].Stream, recs[i].Version); got != w || recs[i].Position != uint64(i+1) {
			t.Errorf("record %d = %s at %d, want %s at %d", i, got, recs[i].Position, w, i+1)
		}
	}
	if rep, err := s.Verify(t.Context()); err != nil || len(rep.Problems) != 0 {
		t.Errorf("Verify = %+v, %v", rep.Problems, err)
	}
}

// TestMigrateFromVersion6 builds a schema at version 6 holding a group
// appended by version 6's append_group, then opens it: a group appended
// through append_group_packed continues the log, version 6's append_group
// (kept at version 7 for processes that opened the schema before, dropped
// at version 8) fails and writes nothing, and Verify finds nothing wrong.
func TestMigrateFromVersion6(t *testing.T) {
	t.Parallel()
	schema, S := schemaAtVersion(t, 6)
	// groupV6 appends two events to T/a in one group the way a version-6
	// process does, and makes them durable as its flush would.
	groupV6 := func(expected int64) error {
		t.Helper()
		return pgtest.Exec(t.Context(), `SELECT statuses FROM `+S+`.append_group(ARRAY['\x54'::bytea], ARRAY['\x61'::bytea],
	ARRAY[`+fmt.Sprint(expected)+`::bigint], ARRAY[2::bigint], ARRAY[1, 1], ARRAY[1::bigint, 2],
	ARRAY['\x45'::bytea, '\x45'], ARRAY[1::bigint, 1], ARRAY[1700000000::bigint, 1700000000], ARRAY[0, 0],
	ARRAY[NULL::bytea, NULL], ARRAY['\x01'::bytea, '\x02'], ARRAY[gen_random_uuid(), gen_random_uuid()], 1000000);
INSERT INTO `+S+`.log_durable (pid, position) SELECT 0, position FROM `+S+`.log_head
ON CONFLICT (pid) DO UPDATE SET position = excluded.position;`)
	}
	if err := groupV6(0); err != nil {
		t.Fatal(err)
	}
	s := openIn(t, schema)
	var ver int
	if err := s.pool.QueryRow(t.Context(), `SELECT max(version) FROM `+S+`.schema_version`).Scan(&ver); err != nil || ver != SchemaVersion {
		t.Fatalf("schema version after Open = %d, %v; want %d", ver, err, SchemaVersion)
	}
	a := runtime.StreamID{Type: "T", ID: "a"}
	group := []*groupReq{
		s.newGroupReq(runtime.AppendRequest{Stream: a, Expected: 2, Events: storetest.Events(2)}),
		s.newGroupReq(runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "b"}, Expected: runtime.NoStream, Events: storetest.Events(1)}),
	}
	outs, retry, err := s.appendGroupTx(t.Context(), group, func() {})
	if err != nil || retry || outs[0].status != appendOK || outs[0].base != 2 || outs[1].status != appendOK || outs[1].base != 4 {
		t.Fatalf("group after migrating: %+v, %v (retry %v); want positions 3-4 and 5", outs, err, retry)
	}
	if err := groupV6(4); err == nil { // a process still running the version-6 code
		t.Error("version 6's append_group still appends after version 8 dropped it")
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, err := storetest.Collect(s.ReadAll(t.Context(), 0))
	if err != nil || len(recs) != 5 {
		t.Fatalf("ReadAll after migrating = %d records, %v; want 5", len(recs), err)
	}
	for i, w := range []string{`T/"a"@1`, `T/"a"@2`, `T/"a"@3`, `T/"a"@4`, `T/"b"@1`} {
		if got := fmt.Sprintf("%s@%d", recs[i].Stream, recs[i].Version); got != w || recs[i].Position != uint64(i+1) {
			t.Errorf("record %d = %s at %d, want %s at %d", i, got, recs[i].Position, w, i+1)
		}
	}
	if recs[2].Name != "Event0" || recs[3].Metadata["i"] != "1" || string(recs[4].Data) != string(storetest.Events(1)[0].Data) {
		t.Errorf("records of the version-7 group = %+v", recs[2:5])
	}
	if rep, err := s.Verify(t.Context()); err != nil || len(rep.Problems) != 0 || rep.Head != 5 {
		t.Fatalf("Verify after migrating = %+v, %v; want head 5 and no problems", rep, err)
	}
}

// TestMigrateFromVersion7 builds a schema at version 7 holding events
// appended by version 7's functions, then opens it: the old rows keep
// their positions under commit 0, a read that starts inside that commit
// begins at the right event, append_group_packed (which a process of
// version 7 still calls) appends through the new layout, new appends
// continue the log, and Verify finds nothing wrong.
func TestMigrateFromVersion7(t *testing.T) {
	t.Parallel()
	schema, S := schemaAtVersion(t, 7)
	// groupV7 appends n events to T/id in one group the way a version-7
	// process does, and makes them durable as its flush would.
	groupV7 := func(id string, expected, n int) error {
		t.Helper()
		return pgtest.Exec(t.Context(), fmt.Sprintf(`SELECT statuses FROM %[1]s.append_group_packed(ARRAY['\x54'::bytea], ARRAY['%[2]s'::bytea],
	ARRAY[%[3]d::bigint], ARRAY[%[4]d::bigint], ARRAY['\x45'::bytea], ARRAY[1::bigint], ARRAY[1700000000::bigint], ARRAY[0], ARRAY[NULL::bytea],
	array_fill(1, ARRAY[%[4]d]), array_fill(1, ARRAY[%[4]d]), array_fill('\x01'::bytea, ARRAY[%[4]d]),
	ARRAY(SELECT gen_random_uuid() FROM generate_series(1, %[4]d)), 1000000);
INSERT INTO %[1]s.log_durable (pid, position) SELECT 0, position FROM %[1]s.log_head
ON CONFLICT (pid) DO UPDATE SET position = excluded.position;`, S, id, expected, n))
	}
	if err := groupV7("a", 0, 3); err != nil {
		t.Fatal(err)
	}
	if err := groupV7("b", 0, 2); err != nil {
		t.Fatal(err)
	}
	s := openIn(t, schema)
	var ver int
	if err := s.pool.QueryRow(t.Context(), `SELECT max(version) FROM `+S+`.schema_version`).Scan(&ver); err != nil || ver != SchemaVersion {
		t.Fatalf("schema version after Open = %d, %v; want %d", ver, err, SchemaVersion)
	}
	if err := groupV7("a", 3, 2); err != nil { // a process still running the version-7 code
		t.Fatal(err)
	}
	a, c := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "c"}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: c, Expected: runtime.NoStream, Events: storetest.Events(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: a, Expected: 5, Events: storetest.Events(1), IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	want := []string{`T/"a"@1`, `T/"a"@2`, `T/"a"@3`, `T/"b"@1`, `T/"b"@2`, `T/"a"@4`, `T/"a"@5`, `T/"c"@1`, `T/"c"@2`, `T/"a"@6`}
	for _, after := range []uint64{0, 2, 5, 7} {
		recs, err := storetest.Collect(s.ReadAll(t.Context(), after))
		if err != nil || len(recs) != len(want)-int(after) {
			t.Fatalf("ReadAll(%d) after migrating = %d records, %v; want %d", after, len(recs), err, len(want)-int(after))
		}
		for i, r := range recs {
			if got := fmt.Sprintf("%s@%d", r.Stream, r.Version); got != want[int(after)+i] || r.Position != after+uint64(i)+1 {
				t.Errorf("ReadAll(%d) record %d = %s at %d, want %s at %d", after, i, got, r.Position, want[int(after)+i], after+uint64(i)+1)
			}
		}
	}
	recs, err := storetest.Collect(s.ReadStream(t.Context(), a, 2))
	if err != nil || len(recs) != 4 || recs[0].Position != 3 || recs[1].Position != 6 || recs[3].Position != 10 {
		t.Fatalf("ReadStream(a, 2) after migrating = %+v, %v; want versions 3-6 at positions 3, 6, 7, 10", recs, err)
	}
	if rec, err := s.LoadIdempotency(t.Context(), "k"); err != nil || rec.Position != 10 || rec.Version != 6 {
		t.Errorf("idempotency record = %+v, %v; want version 6 at position 10", rec, err)
	}
	if rep, err := s.Verify(t.Context()); err != nil || len(rep.Problems) != 0 || rep.Head != 10 || rep.Events != 10 {
		t.Fatalf("Verify after migrating = %+v, %v; want head 10, 10 events and no problems", rep, err)
	}
}

// TestMigrateFromVersion8 opens a schema of version 8 holding events: the
// migration gives both indexes of commits their covering columns, and the
// events read as before.
func TestMigrateFromVersion8(t *testing.T) {
	t.Parallel()
	schema, S := schemaAtVersion(t, 8)
	if err := pgtest.Exec(t.Context(), `SELECT statuses FROM `+S+`.append_group_packed(ARRAY['\x54'::bytea, '\x54'::bytea], ARRAY['\x61'::bytea, '\x62'::bytea],
	ARRAY[0::bigint, 0], ARRAY[2::bigint, 1], ARRAY['\x45'::bytea], ARRAY[1::bigint], ARRAY[1700000000::bigint], ARRAY[0], ARRAY[NULL::bytea],
	ARRAY[1, 1, 2], ARRAY[1, 1, 1], ARRAY['\x01'::bytea, '\x02', '\x03'], ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()], 1000000);
INSERT INTO `+S+`.log_durable (pid, position) SELECT 0, position FROM `+S+`.log_head
ON CONFLICT (pid) DO UPDATE SET position = excluded.position;`); err != nil {
		t.Fatal(err)
	}
	s := openIn(t, schema)
	for name, want := range map[string]string{"commits_pkey": "(id) INCLUDE (first)", "commits_last_key": "(last) INCLUDE (id, first)"} {
		var def string
		if err := s.pool.QueryRow(t.Context(), `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`, schema, name).Scan(&def); err != nil {
			t.Fatalf("index %s: %v", name, err)
		}
		if !strings.HasSuffix(def, want) {
			t.Errorf("index %s after migrating = %q, want it to end with %q", name, def, want)
		}
	}
	if _, err := s.Append(t.Context(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "a"}, Expected: 2, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}
	recs, err := storetest.Collect(s.ReadAll(t.Context(), 0))
	if err != nil || len(recs) != 4 || recs[3].Position != 4 || recs[2].Stream.ID != "b" {
		t.Fatalf("ReadAll after migrating = %+v, %v; want a@1, a@2, b@1, a@3 at 1-4", recs, err)
	}
	recs, err = storetest.Collect(s.ReadStream(t.Context(), runtime.StreamID{Type: "T", ID: "a"}, 0))
	if err != nil || len(recs) != 3 || recs[1].Position != 2 || recs[2].Position != 4 {
		t.Fatalf("ReadStream(a) after migrating = %+v, %v; want versions 1-3 at positions 1, 2, 4", recs, err)
	}
	if rep, err := s.Verify(t.Context()); err != nil || len(rep.Problems) != 0 || rep.Head != 4 {
		t.Fatalf("Verify after migrating = %+v, %v; want head 4 and no problems", rep, err)
	}
}

// schemaAtVersion creates a fresh schema migrated to version n, as a
// process of that version would have left it, and returns its name and
// its quoted name.
func schemaAtVersion(t *testing.T, n int) (schema, quoted string) {
	t.Helper()
	schema = pgtest.Schema(t)
	quoted = pgx.Identifier{schema}.Sanitize()
	if err := pgtest.Exec(t.Context(), `CREATE SCHEMA `+quoted+`;
CREATE TABLE `+quoted+`.schema_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
`+strings.ReplaceAll(strings.Join(migrations[:n], "\n"), "{{S}}", quoted)+`
INSERT INTO `+quoted+`.schema_version (version) SELECT generate_series(1, `+fmt.Sprint(n)+`);`); err != nil {
		t.Fatal(err)
	}
	return schema, quoted
}
