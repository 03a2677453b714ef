package postgres

import "strings"

// queries holds the store's SQL with the schema name filled in. pgx
// prepares and caches each statement per connection.
type queries struct {
	head, idemInsert, streamLock, appendNotify, appendQuiet string
	idemLoad, readAll, readStream, streamVersion            string
	snapSave, snapLoad, ckptSave, ckptLoad, idemSave, stats string
}

const eventCols = `position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data`

func newQueries(schema string) queries {
	r := strings.NewReplacer("{{S}}", schema)
	appendSQL := `
WITH h AS (
	UPDATE {{S}}.log_head SET position = position + $1::bigint WHERE id = 1
	RETURNING position - $1::bigint AS base
), e AS (
	INSERT INTO {{S}}.events (` + eventCols + `)
	SELECT h.base + x.i, $2::bytea, $3::bytea, $4::bigint - 1 + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data
	FROM h, unnest($5::bytea[], $6::bigint[], $7::bigint[], $8::int[], $9::bytea[], $10::bytea[])
		WITH ORDINALITY AS x(name, schema, ts, tn, md, data, i)
), st AS (
	UPDATE {{S}}.streams SET version = $11::bigint WHERE stream_type = $2::bytea AND stream_id = $3::bytea
), k AS (
	UPDATE {{S}}.idempotency SET version = $11::bigint, position = (SELECT base FROM h) + $1::bigint
	WHERE key = $12::bytea
)
SELECT base`
	return queries{
		head: r.Replace(`SELECT position FROM {{S}}.log_head WHERE id = 1`),
		idemInsert: r.Replace(`INSERT INTO {{S}}.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING 1`),
		streamLock: r.Replace(`INSERT INTO {{S}}.streams AS t (stream_type, stream_id, version) VALUES ($1, $2, 0)
ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = t.version RETURNING version`),
		appendNotify: r.Replace(appendSQL + `, pg_notify($13::text, (base + $1::bigint)::text) FROM h`),
		appendQuiet:  r.Replace(appendSQL + `, $13::text FROM h`),
		idemLoad: r.Replace(`SELECT key, stream_type, stream_id, version, position, time_s, time_ns
FROM {{S}}.idempotency WHERE key = $1`),
		readAll: r.Replace(`SELECT ` + eventCols + ` FROM {{S}}.events
WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`),
		readStream: r.Replace(`SELECT ` + eventCols + ` FROM {{S}}.events
WHERE stream_type = $1 AND stream_id = $2 AND version > $3 ORDER BY version LIMIT $4`),
		streamVersion: r.Replace(`SELECT version FROM {{S}}.streams WHERE stream_type = $1 AND stream_id = $2`),
		snapSave: r.Replace(`INSERT INTO {{S}}.snapshots AS t (stream_type, stream_id, version, schema, time_s, time_ns, data)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (stream_type, stream_id) DO UPDATE
SET version = excluded.version, schema = excluded.schema, time_s = excluded.time_s,
	time_ns = excluded.time_ns, data = excluded.data
WHERE t.version <= excluded.version`),
		snapLoad: r.Replace(`SELECT version, schema, time_s, time_ns, data FROM {{S}}.snapshots
WHERE stream_type = $1 AND stream_id = $2`),
		ckptSave: r.Replace(`INSERT INTO {{S}}.checkpoints (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position`),
		ckptLoad: r.Replace(`SELECT position FROM {{S}}.checkpoints WHERE name = $1`),
		idemSave: r.Replace(`INSERT INTO {{S}}.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING 1`),
		stats: r.Replace(`SELECT
	(SELECT position FROM {{S}}.log_head WHERE id = 1),
	(SELECT count(*) FROM {{S}}.streams WHERE version > 0),
	(SELECT count(*) FROM {{S}}.snapshots),
	(SELECT count(*) FROM {{S}}.checkpoints),
	(SELECT count(*) FROM {{S}}.idempotency),
	(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'),
	pg_total_relation_size(format('%I.events', $1::text)::regclass),
	(SELECT coalesce(max(version), 0) FROM {{S}}.schema_version)`),
	}
}
