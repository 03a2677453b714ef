package postgres

import (
	"fmt"
	"strings"
)

// queries holds the store's SQL with the schema name filled in. pgx
// prepares and caches each statement per connection.
type queries struct {
	head, heads, appendFn, appendGroup, appendGroupDurable, flush, notify string
	appendMove, appendUpsert, appendMoveArrays, appendUpsertArrays        string
	idemLoad, readAll, nextPosition, readStream, streamVersion            string
	snapSave, snapLoad, ckptSave, ckptLoad, idemSave, stats               string
}

// eventCols are the columns scanRecord reads, from event_log (commits.go).
const eventCols = `position, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id`

// readAllSQL reads the events at positions $1 < p <= $2 ($2 at most a
// durable head), a window of $3 = $2 - $1 positions: commits by their last
// position, each commit's rows by off (both bounds on off are index
// conditions, so a read that starts inside a large commit does not walk
// its earlier rows). Positions are unique, so the window holds at most $3
// rows and the LIMIT never cuts it; it keeps the planner on the nested
// loop over the two indexes. The rows are ordered by commit only: the
// inner index scan yields a commit's rows by off, and the reader checks
// (sorting a page that is not in position order), where ORDER BY
// commit_last, off made the server sort every commit's rows again, about
// half a page's time (docs/benchmarks-history.md, seventh pass).
const readAllSQL = `SELECT ` + eventCols + ` FROM {{S}}.event_log
WHERE commit_last > $1 AND commit_first <= $2 AND off > $1 - commit_first + 1 AND off <= $2 - commit_first + 1
ORDER BY commit_last LIMIT $3`

// nextPositionSQL finds the first event at a position > $1 and <= $2 (0
// when there is none): where a ReadAll window was empty (a deleted stream's
// or a truncated log's hole) the next window starts there, not at the next
// multiple of the page size. Each commit is probed for its first row past
// $1 by its primary key; commits left empty by hard deletes are walked.
const nextPositionSQL = `SELECT coalesce((SELECT c.first + e.off - 1 FROM {{S}}.commits c
CROSS JOIN LATERAL (SELECT off FROM {{S}}.events e WHERE e.commit_id = c.id AND e.off > $1 - c.first + 1 ORDER BY off LIMIT 1) e
WHERE c.last > $1 AND c.first <= $2 ORDER BY c.last LIMIT 1), 0)`

// loneMove is the head of appendMove and appendMoveArrays: the stream's
// row moved by $4 events when its version matches $3, up to the largest
// version, parameter $maxParam (the two statements number their
// parameters differently after the fourth).
func loneMove(maxParam int) string {
	return fmt.Sprintf(`WITH s AS (UPDATE {{S}}.streams SET version = version + $4::bigint
	WHERE stream_type = $1 AND stream_id = $2
		AND ($3::bigint = -1 OR ($3 = -2 AND version > 0) OR version = $3) AND version + $4 <= $%d::bigint
	RETURNING version - $4 AS actual)`, maxParam)
}

// loneUpsert is loneMove that creates the stream's row when it is missing
// (appendUpsert, appendUpsertArrays: an expected version of any or 0).
func loneUpsert(maxParam int) string {
	return fmt.Sprintf(`WITH s AS (INSERT INTO {{S}}.streams AS t (stream_type, stream_id, version) VALUES ($1, $2, $4::bigint)
	ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = t.version + $4
	WHERE ($3::bigint = -1 OR t.version = $3) AND t.version + $4 <= $%d::bigint
	RETURNING t.version - $4 AS actual)`, maxParam)
}

// appendLoneTail follows the stream's update in appendMove and
// appendUpsert. The events come as append_group_packed's do (loneParams):
// $5-$9 the kinds' columns, $10 each event's kind, $11 the data, $12 the
// ids; the kinds are few (one per run of events sharing name, schema, time
// and metadata), so subscripting the flat arrays stays cheap. The counter's update joins the stream's result, so it runs
// (and locks log_head) only after the stream's row is locked and checked:
// the lock order of append_events.
// appendLoneArraysTail is appendLoneTail with the events as one array
// per column ($5-$11, the maximum version $12), for appends whose events
// have many kinds: subscripting a flat array of variable-length elements
// walks it from its start.
const appendLoneArraysTail = `,
c AS (SELECT nextval('{{S}}.commit_ids') AS cid, s.actual FROM s),
e AS (INSERT INTO {{S}}.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT c.cid, x.i, $1, $2, c.actual + x.i, x.name, x.schema, x.ts, x.tn, x.md, x.data, x.eid
	FROM c, unnest($5::bytea[], $6::bigint[], $7::bigint[], $8::int[], $9::bytea[], $10::bytea[], $11::uuid[])
		WITH ORDINALITY AS x(name, schema, ts, tn, md, data, eid, i))` + loneCommit

const appendLoneTail = `,
c AS (SELECT nextval('{{S}}.commit_ids') AS cid, s.actual FROM s),
e AS (INSERT INTO {{S}}.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
	SELECT c.cid, x.i, $1, $2, c.actual + x.i,
		($5::bytea[])[x.d], ($6::bigint[])[x.d], ($7::bigint[])[x.d], ($8::int[])[x.d], ($9::bytea[])[x.d], x.data, x.eid
	FROM c, unnest($10::int[], $11::bytea[], $12::uuid[]) WITH ORDINALITY AS x(d, data, eid, i))` + loneCommit

// loneCommit ends appendLoneTail and appendLoneArraysTail: the positions
// for commit c (commits.go; the statement commits synchronously, so the
// counter is held through its flush whatever the order), and the new head
// recorded as durable.
const loneCommit = `,
h AS (UPDATE {{S}}.log_head SET position = position + $4 FROM c WHERE id = 1
	RETURNING position - $4 AS base, c.actual, c.cid),
m AS (INSERT INTO {{S}}.commits (id, first, last) SELECT h.cid, h.base + 1, h.base + $4 FROM h),
d AS (INSERT INTO {{S}}.log_durable AS d (pid, position) SELECT pg_backend_pid(), h.base + $4 FROM h
	ON CONFLICT (pid) DO UPDATE SET position = greatest(d.position, excluded.position))
SELECT base, actual FROM h`

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
		// An unkeyed append alone in its process, in one statement that
		// needs no function call: moves the stream's row (appendMove: the
		// stream must exist; appendUpsert: creates it when missing, for an
		// expected version of any or 0), takes the positions, inserts the
		// events and records the new head as durable (the statement's
		// transaction commits under the session's synchronous_commit, so
		// its commit makes both durable; see appendLone). No row: the
		// stream's row did not match, and append_events tells why.
		appendMove:         r.Replace(loneMove(13) + appendLoneTail),
		appendUpsert:       r.Replace(loneUpsert(13) + appendLoneTail),
		appendMoveArrays:   r.Replace(loneMove(12) + appendLoneArraysTail),
		appendUpsertArrays: r.Replace(loneUpsert(12) + appendLoneArraysTail),
		appendGroup: r.Replace(`SELECT statuses, bases, actuals
FROM {{S}}.append_group_packed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`),
		appendGroupDurable: r.Replace(`SELECT statuses, bases, actuals
FROM {{S}}.append_group_durable($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`),
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
		readAll:      r.Replace(readAllSQL),
		nextPosition: r.Replace(nextPositionSQL),
		readStream: r.Replace(`SELECT ` + eventCols + ` FROM {{S}}.event_log
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
