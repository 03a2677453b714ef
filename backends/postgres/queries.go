package postgres

import "strings"

// queries holds the store's SQL with the schema name filled in. pgx
// prepares and caches each statement per connection.
type queries struct {
	head, heads, appendFn, appendGroup, flush, notify       string
	idemLoad, readAll, readStream, streamVersion            string
	snapSave, snapLoad, ckptSave, ckptLoad, idemSave, stats string
}

const eventCols = `position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id`

func newQueries(schema string) queries {
	r := strings.NewReplacer("{{S}}", schema)
	return queries{
		// The durable head: the highest head a flush has made durable.
		head: r.Replace(`SELECT coalesce(max(position), 0) FROM {{S}}.log_durable`),
		// The durable head and the committed (visible) head.
		heads: r.Replace(`SELECT coalesce(max(position), 0), (SELECT position FROM {{S}}.log_head WHERE id = 1)
FROM {{S}}.log_durable`),
		appendFn: r.Replace(`SELECT status, base, actual, k_type, k_id, k_version, k_position, k_time_s, k_time_ns
FROM {{S}}.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`),
		appendGroup: r.Replace(`SELECT statuses, bases, actuals
FROM {{S}}.append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`),
		// A flush: a synchronous commit that writes WAL, so that it waits
		// for the WAL flush (and any synchronous standby) up to its own
		// commit record, which follows the commit record of every append
		// visible to it. It records the head it read as durable.
		flush: r.Replace(`INSERT INTO {{S}}.log_durable AS d (pid, position)
SELECT pg_backend_pid(), position FROM {{S}}.log_head WHERE id = 1
ON CONFLICT (pid) DO UPDATE SET position = greatest(d.position, excluded.position)
RETURNING position`),
		// NOTIFY takes a database-wide lock from its commit until the
		// commit ends: committed asynchronously it is held for
		// microseconds, not for a WAL flush.
		notify: `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`,
		idemLoad: r.Replace(`SELECT key, stream_type, stream_id, version, position, time_s, time_ns
FROM {{S}}.idempotency WHERE key = $1`),
		readAll: r.Replace(`SELECT ` + eventCols + ` FROM {{S}}.events
WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`),
		readStream: r.Replace(`SELECT ` + eventCols + ` FROM {{S}}.events
WHERE stream_type = $1 AND stream_id = $2 AND version > $3 ORDER BY version LIMIT $4`),
		streamVersion: r.Replace(`SELECT version FROM {{S}}.streams WHERE stream_type = $1 AND stream_id = $2`),
		// The stream's row, when it has one, is share-locked: a delete
		// (which locks it for update) comes wholly before or after, and a
		// deleted stream's row (version past runtime.MaxVersion) stops the
		// insert (see delete.go).
		snapSave: r.Replace(`WITH st AS (SELECT version FROM {{S}}.streams WHERE stream_type = $1 AND stream_id = $2 FOR SHARE)
INSERT INTO {{S}}.snapshots AS t (stream_type, stream_id, version, schema, time_s, time_ns, data)
SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM st WHERE version > $8)
ON CONFLICT (stream_type, stream_id) DO UPDATE
SET version = excluded.version, schema = excluded.schema, time_s = excluded.time_s,
	time_ns = excluded.time_ns, data = excluded.data
WHERE t.version <= excluded.version`),
		snapLoad: r.Replace(`SELECT version, schema, time_s, time_ns, data FROM {{S}}.snapshots
WHERE stream_type = $1 AND stream_id = $2`),
		ckptSave: r.Replace(`INSERT INTO {{S}}.checkpoints (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position`),
		ckptLoad: r.Replace(`SELECT position FROM {{S}}.checkpoints WHERE name = $1`),
		// As snapSave: no key is recorded for a deleted stream.
		idemSave: r.Replace(`WITH st AS (SELECT version FROM {{S}}.streams WHERE stream_type = $2 AND stream_id = $3 FOR SHARE)
INSERT INTO {{S}}.idempotency (key, stream_type, stream_id, version, position, time_s, time_ns)
SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM st WHERE version > $8)
ON CONFLICT (key) DO NOTHING RETURNING 1`),
		stats: r.Replace(`SELECT
	(SELECT coalesce(max(position), 0) FROM {{S}}.log_durable),
	(SELECT coalesce(sum(last - first + 1), 0)::bigint FROM {{S}}.holes),
	(SELECT count(*) FROM {{S}}.streams WHERE version > 0),
	(SELECT count(*) FROM {{S}}.snapshots),
	(SELECT count(*) FROM {{S}}.checkpoints),
	(SELECT count(*) FROM {{S}}.idempotency),
	(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'),
	pg_total_relation_size(format('%I.events', $1::text)::regclass),
	(SELECT coalesce(max(version), 0) FROM {{S}}.schema_version),
	(SELECT removed FROM {{S}}.log_truncated WHERE id = 1)`),
	}
}
