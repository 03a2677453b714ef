package postgres

// Positions by commit (schema version 8).
//
// An event row is keyed by its commit and its place in it, (commit_id,
// off), not by its position. A transaction that appends takes a commit id
// from the commit_ids sequence (no lock), inserts its rows under it, and
// only then takes the log_head counter and writes one commits row: the
// positions first..last it was given, off 1 being position first. So the
// counter is held for the counter's update, one small row and the
// (asynchronous) commit, not for the insert of the rows and their index
// entries, which concurrent groups now run side by side. Positions stay
// gap-free and in commit order: they are still handed out by the counter,
// whose row lock is held to the commit.
//
// Readers join the two (event_log). A read by position walks commits by
// their last position (its unique index) and each commit's rows by off; a
// read by stream walks the (stream_type, stream_id, version) index and
// looks up each row's commit by id. Schemas migrated from version 7 keep
// their older rows under one commit, id 0, positions 1 to the head at the
// migration, with off = position.

// migrationCommits (version 8) moves events from position to (commit_id,
// off), rewriting the existing rows once (an UPDATE of every row and a new
// primary key: on a large log, plan for the time and disk of a table
// rewrite). append_events and append_group_packed keep their parameters
// and answers, so processes of version 7 still append through them; their
// lone statements and reads name events.position and fail with an error
// until they restart on this version. The version 2 and 3 functions that
// no process of version 7 calls are dropped.
const migrationCommits = `
CREATE SEQUENCE {{S}}.commit_ids;
CREATE TABLE {{S}}.commits (
	id    bigint PRIMARY KEY,
	first bigint NOT NULL CHECK (first > 0),
	last  bigint NOT NULL UNIQUE,
	CHECK (last >= first)
);
INSERT INTO {{S}}.commits (id, first, last) SELECT 0, 1, position FROM {{S}}.log_head WHERE id = 1 AND position > 0;
ALTER TABLE {{S}}.events ADD COLUMN commit_id bigint, ADD COLUMN off bigint;
UPDATE {{S}}.events SET commit_id = 0, off = position;
ALTER TABLE {{S}}.events DROP COLUMN position,
	ALTER COLUMN commit_id SET NOT NULL, ALTER COLUMN off SET NOT NULL,
	ADD PRIMARY KEY (commit_id, off);

-- Every event with its position.
CREATE VIEW {{S}}.event_log AS
SELECT c.first + e.off - 1 AS position, e.stream_type, e.stream_id, e.version, e.name, e.schema,
	e.time_s, e.time_ns, e.metadata, e.data, e.event_id, e.commit_id, e.off, c.first AS commit_first, c.last AS commit_last
FROM {{S}}.events e JOIN {{S}}.commits c ON c.id = e.commit_id;

DROP FUNCTION {{S}}.append_events(bytea, bytea, bigint, bytea, bytea[], bigint[], bigint[], int[], bytea[], bytea[],
	bigint, int, bigint);
DROP FUNCTION {{S}}.append_group(bytea[], bytea[], bigint[], bigint[], int[], bigint[], bytea[], bigint[], bigint[], int[],
	bytea[], bytea[], bigint);
DROP FUNCTION {{S}}.append_group(bytea[], bytea[], bigint[], bigint[], int[], bigint[], bytea[], bigint[], bigint[], int[],
	bytea[], bytea[], uuid[], bigint);

CREATE OR REPLACE FUNCTION {{S}}.append_events(
	p_type bytea, p_id bytea, p_expected bigint, p_key bytea,
	p_names bytea[], p_schemas bigint[], p_ts bigint[], p_tn int[], p_mds bytea[], p_datas bytea[], p_eids uuid[],
	p_now_s bigint, p_now_ns int, p_max_version bigint,
	OUT status int, OUT base bigint, OUT actual bigint,
	OUT k_type bytea, OUT k_id bytea, OUT k_version bigint, OUT k_position bigint,
	OUT k_time_s bigint, OUT k_time_ns int)
LANGUAGE plpgsql AS $fn$
DECLARE
	n bigint := cardinality(p_names);
	c bigint;
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
	ELSE
		-- With an idempotency key: lock the stream's row first, so that
		-- nothing is written before both the version and the key are
		-- checked. Lock order: stream row, idempotency key, log_head.
		INSERT INTO {{S}}.streams AS t (stream_type, stream_id, version) VALUES (p_type, p_id, 0)
		ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = t.version
		RETURNING t.version INTO actual;
		IF NOT (p_expected = -1 OR (p_expected = -2 AND actual > 0) OR p_expected = actual) THEN
			-- A retry of a keyed append that succeeded is a duplicate, not a conflict.
			SELECT k.stream_type, k.stream_id, k.version, k.position, k.time_s, k.time_ns
			INTO k_type, k_id, k_version, k_position, k_time_s, k_time_ns
			FROM {{S}}.idempotency k WHERE k.key = p_key;
			IF FOUND THEN
				status := 2;
				RETURN;
			END IF;
			status := 1;
			RETURN;
		END IF;
		IF actual + n > p_max_version THEN
			status := 3;
			RETURN;
		END IF;
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
		UPDATE {{S}}.streams SET version = actual + n WHERE stream_type = p_type AND stream_id = p_id;
	END IF;
	c := nextval('{{S}}.commit_ids');
	INSERT INTO {{S}}.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT c, x.i, p_type, p_id, actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data, x.eid
	FROM unnest(p_names, p_schemas, p_ts, p_tn, p_mds, p_datas, p_eids) WITH ORDINALITY AS x(name, schema, ts, tn, md, data, eid, i);
	-- The positions, last: the counter is held from here to the commit.
	UPDATE {{S}}.log_head SET position = position + n WHERE id = 1 RETURNING position - n INTO base;
	INSERT INTO {{S}}.commits (id, first, last) VALUES (c, base + 1, base + n);
	IF p_key IS NOT NULL THEN
		UPDATE {{S}}.idempotency SET version = actual + n, position = base + n WHERE key = p_key;
	END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION {{S}}.append_group_packed(
	p_types bytea[], p_ids bytea[], p_expected bigint[], p_counts bigint[],
	p_knames bytea[], p_kschemas bigint[], p_kts bigint[], p_ktn int[], p_kmds bytea[],
	p_owner int[], p_kind int[], p_datas bytea[], p_eids uuid[],
	p_max_version bigint,
	OUT statuses int[], OUT bases bigint[], OUT actuals bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
	k int;
	n bigint;
	e bigint;
	a bigint;
	total bigint := 0;
	start bigint := 0;
	b bigint;
	c bigint;
	offs bigint[];
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	statuses := array_fill(0, ARRAY[cardinality(p_types)]);
	bases := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	actuals := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
	offs := array_fill(0::bigint, ARRAY[cardinality(p_types)]);
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
			-- The append's events are x.i = start+1 .. start+n of the
			-- flattened arrays: offs[k] + x.i is their place in the group.
			offs[k] := total - start;
			total := total + n;
		END IF;
		start := start + n;
	END LOOP;
	IF total = 0 THEN
		RETURN;
	END IF;
	c := nextval('{{S}}.commit_ids');
	INSERT INTO {{S}}.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT c, offs[x.k] + x.i, p_types[x.k], p_ids[x.k], actuals[x.k] + offs[x.k] + x.i - bases[x.k],
		p_knames[x.d], p_kschemas[x.d], p_kts[x.d], p_ktn[x.d], p_kmds[x.d], x.data, x.eid
	FROM unnest(p_owner, p_kind, p_datas, p_eids) WITH ORDINALITY AS x(k, d, data, eid, i)
	WHERE statuses[x.k] = 0;
	-- The positions, last: the counter is held from here to the commit.
	UPDATE {{S}}.log_head SET position = position + total WHERE id = 1 RETURNING position - total INTO b;
	INSERT INTO {{S}}.commits (id, first, last) VALUES (c, b + 1, b + total);
	FOR k IN 1 .. cardinality(p_types) LOOP
		IF statuses[k] = 0 THEN
			bases[k] := b + bases[k];
		END IF;
	END LOOP;
END
$fn$;
`

// migrationCoveringCommits (version 9) makes both indexes of commits cover
// what readers take from them, so that the join of event_log reads a
// commit from its index alone (an index-only scan, once VACUUM has marked
// the table's pages all-visible): a read by stream looks up each row's
// commit by id for its first position, a read by position walks commits by
// last for their id and first. Measured on 210,000 events (pgx, prepared,
// alternated; docs/benchmarks-history.md, seventh pass): a 100-row
// ReadStream page 5–12% faster. The indexes keep their names and their
// keys; they are rebuilt once, a table of one row per commit.
const migrationCoveringCommits = `
ALTER TABLE {{S}}.commits DROP CONSTRAINT commits_pkey,
	ADD CONSTRAINT commits_pkey PRIMARY KEY (id) INCLUDE (first);
ALTER TABLE {{S}}.commits DROP CONSTRAINT commits_last_key,
	ADD CONSTRAINT commits_last_key UNIQUE (last) INCLUDE (id, first);
`

// migrationDurableGroup (version 10) adds append_group_durable:
// append_group_packed (same parameters and answers) with
// synchronous_commit given back to what the session had before the call
// (append_group_packed sets it off for its transaction), then the head
// recorded as durable, as the flush statement records it (queries.go), in
// the same transaction. So a group commits and is durable in one
// transaction, the commit holding log_head through its WAL flush, and
// the head is visible only once it is durable. A process uses it while it
// sees no other process appending (groupPipeline); processes of version 8
// and 9 keep calling append_group_packed.
const migrationDurableGroup = `
CREATE FUNCTION {{S}}.append_group_durable(
	p_types bytea[], p_ids bytea[], p_expected bigint[], p_counts bigint[],
	p_knames bytea[], p_kschemas bigint[], p_kts bigint[], p_ktn int[], p_kmds bytea[],
	p_owner int[], p_kind int[], p_datas bytea[], p_eids uuid[],
	p_max_version bigint,
	OUT statuses int[], OUT bases bigint[], OUT actuals bigint[])
LANGUAGE plpgsql AS $fn$
DECLARE
	sc text := current_setting('synchronous_commit');
BEGIN
	SELECT g.statuses, g.bases, g.actuals INTO statuses, bases, actuals
	FROM {{S}}.append_group_packed(p_types, p_ids, p_expected, p_counts, p_knames, p_kschemas, p_kts, p_ktn, p_kmds,
		p_owner, p_kind, p_datas, p_eids, p_max_version) g;
	PERFORM set_config('synchronous_commit', sc, true);
	INSERT INTO {{S}}.log_durable AS d (pid, position)
	SELECT pg_backend_pid(), position FROM {{S}}.log_head WHERE id = 1
	ON CONFLICT (pid) DO UPDATE SET position = greatest(d.position, excluded.position);
END
$fn$;
`
