package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the table layout this code writes. Open
// migrates older schemas up to it and refuses newer ones.
const SchemaVersion = 10

// lockClass is the first key of the advisory lock that serialises
// migrations; the second is hashtext(schema name), so stores in distinct
// schemas do not wait for each other.
const lockClass = 0x63717273 // "cqrs"

// SchemaVersionError reports a schema written by a newer version of this
// package: Open refuses it rather than misread it.
type SchemaVersionError struct {
	// Schema is the PostgreSQL schema (namespace) holding the tables.
	Schema string
	// Found is the version recorded in the schema's version table.
	Found int
	// Supported is the newest version this code understands (SchemaVersion).
	Supported int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("cqrsgen: postgres: schema %q is at version %d, newer than version %d that this build supports: "+
		"a newer cqrsgen has migrated it (schemas are never migrated down); run that version or newer here too",
		e.Schema, e.Found, e.Supported)
}

// migrations[i] takes the schema from version i to i+1. {{S}} is replaced
// by the quoted schema name. Version 4 (retention.go) is migrationRetention.
var migrations = []string{
	`
CREATE TABLE {{S}}.log_head (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL CHECK (position >= 0)
);
INSERT INTO {{S}}.log_head (id, position) VALUES (1, 0);

CREATE TABLE {{S}}.streams (
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL CHECK (version >= 0),
	PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE {{S}}.events (
	position    bigint PRIMARY KEY,
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	name        bytea  NOT NULL,
	schema      bigint NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL,
	metadata    bytea,
	data        bytea  NOT NULL,
	UNIQUE (stream_type, stream_id, version)
);

CREATE TABLE {{S}}.snapshots (
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	schema      bytea  NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL,
	data        bytea  NOT NULL,
	PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE {{S}}.checkpoints (
	name     bytea  PRIMARY KEY,
	position bigint NOT NULL
);

CREATE TABLE {{S}}.idempotency (
	key         bytea  PRIMARY KEY,
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	position    bigint NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL
);
`,
	// Version 2: appends commit asynchronously and become durable in
	// shared flushes (see append.go). log_durable holds, per server
	// backend that ran a flush, the head that flush made durable; readers
	// follow max(position). Every position committed under version 1 was
	// durable (synchronous commits), hence the seed row.
	`
CREATE TABLE {{S}}.log_durable (
	pid      int    PRIMARY KEY,
	position bigint NOT NULL CHECK (position >= 0)
);
INSERT INTO {{S}}.log_durable (pid, position) SELECT 0, position FROM {{S}}.log_head WHERE id = 1;

CREATE FUNCTION {{S}}.append_events(
	p_type bytea, p_id bytea, p_expected bigint, p_key bytea,
	p_names bytea[], p_schemas bigint[], p_ts bigint[], p_tn int[], p_mds bytea[], p_datas bytea[],
	p_now_s bigint, p_now_ns int, p_max_version bigint,
	OUT status int, OUT base bigint, OUT actual bigint,
	OUT k_type bytea, OUT k_id bytea, OUT k_version bigint, OUT k_position bigint,
	OUT k_time_s bigint, OUT k_time_ns int)
LANGUAGE plpgsql AS $fn$
DECLARE
	n bigint := cardinality(p_names);
BEGIN
	-- Commit without waiting for the WAL flush: the log_head row lock is
	-- then held for microseconds, not for an fsync. The caller makes the
	-- append durable afterwards with a flush that many appends share.
	PERFORM set_config('synchronous_commit', 'off', true);
	status := 0;
	base := 0;
	IF p_key IS NULL THEN
		-- One statement locks, checks and moves the stream's row (under READ
		-- COMMITTED a concurrent update is rechecked on its newest version).
		LOOP
			UPDATE {{S}}.streams SET version = version + n
			WHERE stream_type = p_type AND stream_id = p_id
				AND (p_expected = -1 OR (p_expected = -2 AND version > 0) OR version = p_expected)
				AND version + n <= p_max_version
			RETURNING version - n INTO actual;
			EXIT WHEN FOUND;
			SELECT t.version INTO actual FROM {{S}}.streams t WHERE t.stream_type = p_type AND t.stream_id = p_id;
			IF NOT FOUND THEN
				actual := 0;
				IF p_expected = -1 OR p_expected = 0 THEN
					INSERT INTO {{S}}.streams (stream_type, stream_id, version) VALUES (p_type, p_id, n)
					ON CONFLICT (stream_type, stream_id) DO NOTHING;
					EXIT WHEN FOUND;
					CONTINUE; -- created meanwhile: try again
				END IF;
			END IF;
			IF NOT (p_expected = -1 OR (p_expected = -2 AND actual > 0) OR p_expected = actual) THEN
				status := 1;
				RETURN;
			END IF;
			IF actual + n > p_max_version THEN
				status := 3;
				RETURN;
			END IF;
			-- Moved to a matching version meanwhile: try again.
		END LOOP;
		UPDATE {{S}}.log_head SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
		INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data)
		SELECT base + x.i, p_type, p_id, actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data
		FROM unnest(p_names, p_schemas, p_ts, p_tn, p_mds, p_datas) WITH ORDINALITY AS x(name, schema, ts, tn, md, data, i);
		RETURN;
	END IF;
	-- With an idempotency key: lock the stream's row first, so that nothing
	-- is written before both the version and the key are checked.
	-- Lock order: stream row, idempotency key, log_head.
	INSERT INTO {{S}}.streams AS t (stream_type, stream_id, version) VALUES (p_type, p_id, 0)
	ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = t.version
	RETURNING t.version INTO actual;
	IF NOT (p_expected = -1 OR (p_expected = -2 AND actual > 0) OR p_expected = actual) THEN
		-- A retry of a keyed append that succeeded is a duplicate, not a conflict.
		IF p_key IS NOT NULL THEN
			SELECT k.stream_type, k.stream_id, k.version, k.position, k.time_s, k.time_ns
			INTO k_type, k_id, k_version, k_position, k_time_s, k_time_ns
			FROM {{S}}.idempotency k WHERE k.key = p_key;
			IF FOUND THEN
				status := 2;
				RETURN;
			END IF;
		END IF;
		status := 1;
		RETURN;
	END IF;
	IF actual + n > p_max_version THEN
		status := 3;
		RETURN;
	END IF;
	IF p_key IS NOT NULL THEN
		-- Waits for a concurrent transaction inserting the same key.
		INSERT INTO {{S}}.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
		VALUES (p_key, p_type, p_id, 0, 0, p_now_s, p_now_ns) ON CONFLICT (key) DO NOTHING;
		IF NOT FOUND THEN
			-- A new statement, so a new snapshot: it sees the winner.
			SELECT k.stream_type, k.stream_id, k.version, k.position, k.time_s, k.time_ns
			INTO k_type, k_id, k_version, k_position, k_time_s, k_time_ns
			FROM {{S}}.idempotency k WHERE k.key = p_key;
			status := 2;
			RETURN;
		END IF;
	END IF;
	UPDATE {{S}}.log_head SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
	INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data)
	SELECT base + x.i, p_type, p_id, actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data
	FROM unnest(p_names, p_schemas, p_ts, p_tn, p_mds, p_datas) WITH ORDINALITY AS x(name, schema, ts, tn, md, data, i);
	UPDATE {{S}}.streams SET version = actual + n WHERE stream_type = p_type AND stream_id = p_id;
	IF p_key IS NOT NULL THEN
		UPDATE {{S}}.idempotency SET version = actual + n, position = base + n WHERE key = p_key;
	END IF;
END
$fn$;

-- Many unkeyed appends of one process in one transaction: one counter
-- update and one insert for all. Each append is checked on its own (its
-- status, base and actual version are returned at its index); the caller
-- sorts them by stream, so that concurrent groups lock stream rows in one
-- order. Events are flattened: p_owner and p_seq give each event's append
-- (1-based) and its place in that append (1-based).
CREATE FUNCTION {{S}}.append_group(
	p_types bytea[], p_ids bytea[], p_expected bigint[], p_counts bigint[],
	p_owner int[], p_seq bigint[],
	p_names bytea[], p_schemas bigint[], p_ts bigint[], p_tn int[], p_mds bytea[], p_datas bytea[],
	p_max_version bigint,
	OUT statuses int[], OUT bases bigint[], OUT actuals bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
	k int;
	n bigint;
	e bigint;
	a bigint;
	total bigint := 0;
	b bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	statuses := array_fill(0, ARRAY[cardinality(p_types)]);
	bases := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	actuals := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	FOR k IN 1 .. cardinality(p_types) LOOP
		n := p_counts[k];
		e := p_expected[k];
		LOOP
			UPDATE {{S}}.streams SET version = version + n
			WHERE stream_type = p_types[k] AND stream_id = p_ids[k]
				AND (e = -1 OR (e = -2 AND version > 0) OR version = e)
				AND version + n <= p_max_version
			RETURNING version - n INTO a;
			EXIT WHEN FOUND;
			SELECT t.version INTO a FROM {{S}}.streams t WHERE t.stream_type = p_types[k] AND t.stream_id = p_ids[k];
			IF NOT FOUND THEN
				a := 0;
				IF e = -1 OR e = 0 THEN
					INSERT INTO {{S}}.streams (stream_type, stream_id, version) VALUES (p_types[k], p_ids[k], n)
					ON CONFLICT (stream_type, stream_id) DO NOTHING;
					EXIT WHEN FOUND;
					CONTINUE;
				END IF;
			END IF;
			IF NOT (e = -1 OR (e = -2 AND a > 0) OR e = a) THEN
				statuses[k] := 1;
				EXIT;
			END IF;
			IF a + n > p_max_version THEN
				statuses[k] := 3;
				EXIT;
			END IF;
		END LOOP;
		actuals[k] := a;
		IF statuses[k] = 0 THEN
			bases[k] := total;
			total := total + n;
		END IF;
	END LOOP;
	IF total = 0 THEN
		RETURN;
	END IF;
	UPDATE {{S}}.log_head SET position = position + total WHERE id = 1 RETURNING position - total INTO b;
	INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data)
	SELECT b + bases[x.k] + x.j, p_types[x.k], p_ids[x.k], actuals[x.k] + x.j, x.name, x.schema, x.ts, x.tn, x.md, x.data
	FROM unnest(p_owner, p_seq, p_names, p_schemas, p_ts, p_tn, p_mds, p_datas) AS x(k, j, name, schema, ts, tn, md, data)
	WHERE statuses[x.k] = 0;
	FOR k IN 1 .. cardinality(p_types) LOOP
		IF statuses[k] = 0 THEN
			bases[k] := b + bases[k];
		END IF;
	END LOOP;
END
$fn$;
`,
	// Version 3: every event has an id (runtime.EventID, a UUIDv7 the
	// store's caller or the runtime makes). Rows written before have NULL,
	// read back as the zero id. The functions gain a p_eids argument; the
	// version 2 functions, which take one argument fewer, are kept so that
	// processes that opened the schema before the upgrade keep appending
	// (their events get NULL ids) until they restart.
	`
ALTER TABLE {{S}}.events ADD COLUMN event_id uuid;

CREATE FUNCTION {{S}}.append_events(
	p_type bytea, p_id bytea, p_expected bigint, p_key bytea,
	p_names bytea[], p_schemas bigint[], p_ts bigint[], p_tn int[], p_mds bytea[], p_datas bytea[], p_eids uuid[],
	p_now_s bigint, p_now_ns int, p_max_version bigint,
	OUT status int, OUT base bigint, OUT actual bigint,
	OUT k_type bytea, OUT k_id bytea, OUT k_version bigint, OUT k_position bigint,
	OUT k_time_s bigint, OUT k_time_ns int)
LANGUAGE plpgsql AS $fn$
DECLARE
	n bigint := cardinality(p_names);
BEGIN
	-- Commit without waiting for the WAL flush: the log_head row lock is
	-- then held for microseconds, not for an fsync. The caller makes the
	-- append durable afterwards with a flush that many appends share.
	PERFORM set_config('synchronous_commit', 'off', true);
	status := 0;
	base := 0;
	IF p_key IS NULL THEN
		-- One statement locks, checks and moves the stream's row (under READ
		-- COMMITTED a concurrent update is rechecked on its newest version).
		LOOP
			UPDATE {{S}}.streams SET version = version + n
			WHERE stream_type = p_type AND stream_id = p_id
				AND (p_expected = -1 OR (p_expected = -2 AND version > 0) OR version = p_expected)
				AND version + n <= p_max_version
			RETURNING version - n INTO actual;
			EXIT WHEN FOUND;
			SELECT t.version INTO actual FROM {{S}}.streams t WHERE t.stream_type = p_type AND t.stream_id = p_id;
			IF NOT FOUND THEN
				actual := 0;
				IF p_expected = -1 OR p_expected = 0 THEN
					INSERT INTO {{S}}.streams (stream_type, stream_id, version) VALUES (p_type, p_id, n)
					ON CONFLICT (stream_type, stream_id) DO NOTHING;
					EXIT WHEN FOUND;
					CONTINUE; -- created meanwhile: try again
				END IF;
			END IF;
			IF NOT (p_expected = -1 OR (p_expected = -2 AND actual > 0) OR p_expected = actual) THEN
				status := 1;
				RETURN;
			END IF;
			IF actual + n > p_max_version THEN
				status := 3;
				RETURN;
			END IF;
			-- Moved to a matching version meanwhile: try again.
		END LOOP;
		UPDATE {{S}}.log_head SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
		INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
		SELECT base + x.i, p_type, p_id, actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data, x.eid
		FROM unnest(p_names, p_schemas, p_ts, p_tn, p_mds, p_datas, p_eids) WITH ORDINALITY AS x(name, schema, ts, tn, md, data, eid, i);
		RETURN;
	END IF;
	-- With an idempotency key: lock the stream's row first, so that nothing
	-- is written before both the version and the key are checked.
	-- Lock order: stream row, idempotency key, log_head.
	INSERT INTO {{S}}.streams AS t (stream_type, stream_id, version) VALUES (p_type, p_id, 0)
	ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = t.version
	RETURNING t.version INTO actual;
	IF NOT (p_expected = -1 OR (p_expected = -2 AND actual > 0) OR p_expected = actual) THEN
		-- A retry of a keyed append that succeeded is a duplicate, not a conflict.
		IF p_key IS NOT NULL THEN
			SELECT k.stream_type, k.stream_id, k.version, k.position, k.time_s, k.time_ns
			INTO k_type, k_id, k_version, k_position, k_time_s, k_time_ns
			FROM {{S}}.idempotency k WHERE k.key = p_key;
			IF FOUND THEN
				status := 2;
				RETURN;
			END IF;
		END IF;
		status := 1;
		RETURN;
	END IF;
	IF actual + n > p_max_version THEN
		status := 3;
		RETURN;
	END IF;
	IF p_key IS NOT NULL THEN
		-- Waits for a concurrent transaction inserting the same key.
		INSERT INTO {{S}}.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
		VALUES (p_key, p_type, p_id, 0, 0, p_now_s, p_now_ns) ON CONFLICT (key) DO NOTHING;
		IF NOT FOUND THEN
			-- A new statement, so a new snapshot: it sees the winner.
			SELECT k.stream_type, k.stream_id, k.version, k.position, k.time_s, k.time_ns
			INTO k_type, k_id, k_version, k_position, k_time_s, k_time_ns
			FROM {{S}}.idempotency k WHERE k.key = p_key;
			status := 2;
			RETURN;
		END IF;
	END IF;
	UPDATE {{S}}.log_head SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
	INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT base + x.i, p_type, p_id, actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data, x.eid
	FROM unnest(p_names, p_schemas, p_ts, p_tn, p_mds, p_datas, p_eids) WITH ORDINALITY AS x(name, schema, ts, tn, md, data, eid, i);
	UPDATE {{S}}.streams SET version = actual + n WHERE stream_type = p_type AND stream_id = p_id;
	IF p_key IS NOT NULL THEN
		UPDATE {{S}}.idempotency SET version = actual + n, position = base + n WHERE key = p_key;
	END IF;
END
$fn$;

-- Many unkeyed appends of one process in one transaction: one counter
-- update and one insert for all. Each append is checked on its own (its
-- status, base and actual version are returned at its index); the caller
-- sorts them by stream, so that concurrent groups lock stream rows in one
-- order. Events are flattened: p_owner and p_seq give each event's append
-- (1-based) and its place in that append (1-based).
CREATE FUNCTION {{S}}.append_group(
	p_types bytea[], p_ids bytea[], p_expected bigint[], p_counts bigint[],
	p_owner int[], p_seq bigint[],
	p_names bytea[], p_schemas bigint[], p_ts bigint[], p_tn int[], p_mds bytea[], p_datas bytea[], p_eids uuid[],
	p_max_version bigint,
	OUT statuses int[], OUT bases bigint[], OUT actuals bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
	k int;
	n bigint;
	e bigint;
	a bigint;
	total bigint := 0;
	b bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	statuses := array_fill(0, ARRAY[cardinality(p_types)]);
	bases := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	actuals := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	FOR k IN 1 .. cardinality(p_types) LOOP
		n := p_counts[k];
		e := p_expected[k];
		LOOP
			UPDATE {{S}}.streams SET version = version + n
			WHERE stream_type = p_types[k] AND stream_id = p_ids[k]
				AND (e = -1 OR (e = -2 AND version > 0) OR version = e)
				AND version + n <= p_max_version
			RETURNING version - n INTO a;
			EXIT WHEN FOUND;
			SELECT t.version INTO a FROM {{S}}.streams t WHERE t.stream_type = p_types[k] AND t.stream_id = p_ids[k];
			IF NOT FOUND THEN
				a := 0;
				IF e = -1 OR e = 0 THEN
					INSERT INTO {{S}}.streams (stream_type, stream_id, version) VALUES (p_types[k], p_ids[k], n)
					ON CONFLICT (stream_type, stream_id) DO NOTHING;
					EXIT WHEN FOUND;
					CONTINUE;
				END IF;
			END IF;
			IF NOT (e = -1 OR (e = -2 AND a > 0) OR e = a) THEN
				statuses[k] := 1;
				EXIT;
			END IF;
			IF a + n > p_max_version THEN
				statuses[k] := 3;
				EXIT;
			END IF;
		END LOOP;
		actuals[k] := a;
		IF statuses[k] = 0 THEN
			bases[k] := total;
			total := total + n;
		END IF;
	END LOOP;
	IF total = 0 THEN
		RETURN;
	END IF;
	UPDATE {{S}}.log_head SET position = position + total WHERE id = 1 RETURNING position - total INTO b;
	INSERT INTO {{S}}.events (position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT b + bases[x.k] + x.j, p_types[x.k], p_ids[x.k], actuals[x.k] + x.j, x.name, x.schema, x.ts, x.tn, x.md, x.data, x.eid
	FROM unnest(p_owner, p_seq, p_names, p_schemas, p_ts, p_tn, p_mds, p_datas, p_eids) AS x(k, j, name, schema, ts, tn, md, data, eid)
	WHERE statuses[x.k] = 0;
	FOR k IN 1 .. cardinality(p_types) LOOP
		IF statuses[k] = 0 THEN
			bases[k] := b + bases[k];
		END IF;
	END LOOP;
END
$fn$;
`,
	migrationRetention,
	// Version 5: deleted streams (delete.go). A deleted stream's streams
	// row holds deletedBase + its tombstone's version, which the append
	// functions refuse as over the version limit; deleted_streams names
	// its tombstone, and holes the runs of positions a hard delete removed.
	`
CREATE TABLE {{S}}.deleted_streams (
	stream_type bytea    NOT NULL,
	stream_id   bytea    NOT NULL,
	mode        smallint NOT NULL,
	position    bigint   NOT NULL,
	version     bigint   NOT NULL,
	PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE {{S}}.holes (
	first bigint PRIMARY KEY,
	last  bigint NOT NULL CHECK (last >= first)
);
`,
	migrationTombstoneCopy,
	migrationPackedGroup,     // version 7 (grouprows.go)
	migrationCommits,         // version 8 (commits.go)
	migrationCoveringCommits, // version 9 (commits.go)
	migrationDurableGroup,    // version 10 (commits.go)
}

// migrate creates or upgrades the schema inside one transaction holding an
// advisory lock, so that concurrent Opens (other processes, other
// machines) apply each migration exactly once.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) (int, error) {
	s := pgx.Identifier{schema}.Sanitize()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(lockClass), schema); err != nil {
		return 0, fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
		return 0, fmt.Errorf("creating schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.schema_version (
	version    int PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return 0, fmt.Errorf("creating the version table: %w", err)
	}
	var found int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s+`.schema_version`).Scan(&found); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	if found > SchemaVersion {
		return found, &SchemaVersionError{Schema: schema, Found: found, Supported: SchemaVersion}
	}
	for v := found; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{{S}}", s)); err != nil {
			return found, fmt.Errorf("migrating to version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.schema_version (version) VALUES ($1)`, v+1); err != nil {
			return found, fmt.Errorf("recording version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return found, err
	}
	return SchemaVersion, nil
}

// pruneDurable deletes the log_durable rows below the highest, left by
// server backends that have since gone. It never lowers the maximum: that
// row is kept, and a row a concurrent flush updates meanwhile gets a value
// at least as high (the head it reads is at least every durable value), so
// the recheck of the updated row keeps it.
func pruneDurable(ctx context.Context, conn *pgx.Conn, schema string) error {
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `DELETE FROM `+s+`.log_durable WHERE position < (SELECT max(position) FROM `+s+`.log_durable)`); err != nil {
		return fmt.Errorf("pruning log_durable: %w", err)
	}
	return nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
