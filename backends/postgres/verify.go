package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
)

// Kinds of problem that Verify reports (storekit.VerifyProblem.Kind). The
// values are stable and shared with the Pebble store where the concept is
// the same (runtime's Problem* constants, repeated here).
const (
	ProblemRecord       = storekit.ProblemRecord       // an events row does not decode
	ProblemPositionGap  = storekit.ProblemPositionGap  // global positions are not exactly 1..head
	ProblemHead         = "head"                       // log_head disagrees with the events table, or log_durable is past it
	ProblemIndexMissing = storekit.ProblemIndexMissing // an event's stream has no streams row, or the row is behind
	ProblemIndexAhead   = "index-ahead"                // a streams row is ahead of the stream's events
	ProblemVersionGap   = storekit.ProblemVersionGap   // a stream's versions do not run 1, 2, 3, … without holes
	ProblemVersionOrder = storekit.ProblemVersionOrder // a stream's positions do not increase with its versions
	ProblemSnapshot     = storekit.ProblemSnapshot     // a snapshot row is out of range or ahead of its stream
	ProblemIdempotency  = storekit.ProblemIdempotency  // an idempotency row is out of range or points past its stream
	ProblemCheckpoint   = storekit.ProblemCheckpoint   // a checkpoint is past the head
)

// Store implements storekit.Verifier and storekit.StreamLister.
var (
	_ storekit.Verifier     = (*Store)(nil)
	_ storekit.StreamLister = (*Store)(nil)
)

// Verify checks the store's tables in one REPEATABLE READ, read-only
// transaction (a consistent snapshot; writers carry on): every events row
// decodes; positions are exactly 1..log_head (gap-free), and the durable
// head (log_durable) is not past log_head; each stream's versions run
// 1..n with increasing positions; the streams table agrees with the
// events; snapshots, idempotency records and checkpoints are in range and
// do not point past their stream or the head.
//
// Problems go into the report (Problems lists them by check; Head is the
// position log_head records; Extra is nil); the error is only for a check
// that could not be run (a closed store, a done context, a lost
// connection).
func (s *Store) Verify(ctx context.Context) (storekit.VerifyReport, error) {
	const op = "verify"
	leave, err := s.begin(ctx, op)
	if err != nil {
		return storekit.VerifyReport{}, err
	}
	defer leave()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storekit.VerifyReport{}, s.fail(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
		return storekit.VerifyReport{}, s.fail(ctx, op, err)
	}
	S := pgx.Identifier{s.opt.schema}.Sanitize()
	rep := &storekit.VerifyReport{}
	var head, events, streams, snaps, ckpts, keys int64
	if err := tx.QueryRow(ctx, `SELECT
	(SELECT position FROM `+S+`.log_head WHERE id = 1),
	(SELECT count(*) FROM `+S+`.events),
	(SELECT count(*) FROM `+S+`.streams WHERE version > 0),
	(SELECT count(*) FROM `+S+`.snapshots),
	(SELECT count(*) FROM `+S+`.checkpoints),
	(SELECT count(*) FROM `+S+`.idempotency)`).Scan(&head, &events, &streams, &snaps, &ckpts, &keys); err != nil {
		return storekit.VerifyReport{}, s.fail(ctx, op, err)
	}
	rep.Head, rep.Events, rep.Streams = uint64(head), uint64(events), uint64(streams)
	rep.Snapshots, rep.Checkpoints, rep.IdempotencyKeys = uint64(snaps), uint64(ckpts), uint64(keys)

	// Every row decodes.
	var after int64
	for {
		rows, err := tx.Query(ctx, `SELECT `+eventCols+` FROM `+S+`.event_log
WHERE commit_last > $1 AND off > $1 - commit_first + 1 ORDER BY commit_last, off LIMIT $2`, after, pageSize)
		if err != nil {
			return storekit.VerifyReport{}, s.fail(ctx, op, err)
		}
		n := 0
		for rows.Next() {
			n++
			var pos int64
			r, err := scanRecord(rows)
			if err != nil {
				p := storekit.VerifyProblem{Kind: ProblemRecord, Table: "events", Detail: "row does not decode: " + err.Error()}
				var de *runtime.DecodeError
				if errors.As(err, &de) {
					p.Stream, p.Version, p.Position = de.Stream, de.Version, de.Position
					p.Detail = "row does not decode: " + de.Err.Error()
				}
				rep.Add(p)
				pos = int64(p.Position)
			} else {
				pos = int64(r.Position)
			}
			if pos > after {
				after = pos
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return storekit.VerifyReport{}, s.fail(ctx, op, err)
		}
		if err := storekit.ContextErr(ctx, "postgres: "+op); err != nil {
			return storekit.VerifyReport{}, err
		}
		if n < pageSize {
			break
		}
	}

	checks := []struct {
		kind, table, sql string
		detail           func(a, b int64) string
	}{
		// The runs of positions hard deletes removed (holes) fill the gaps
		// they left.
		{ProblemPositionGap, "events", `SELECT ''::bytea, ''::bytea, 0::bigint, position, prev FROM (
	SELECT position, last, coalesce(lag(last) OVER (ORDER BY position), (SELECT position FROM ` + S + `.log_truncated WHERE id = 1)) AS prev FROM (
		SELECT position, position AS last FROM ` + S + `.event_log
		UNION ALL SELECT greatest(h.first, c.position + 1), h.last FROM ` + S + `.holes h, ` + S + `.log_truncated c
			WHERE c.id = 1 AND h.last > c.position) r) x
WHERE position <> prev + 1 ORDER BY position`,
			func(pos, prev int64) string {
				if pos <= prev {
					return fmt.Sprintf("position %d comes again after position %d", pos, prev)
				}
				if pos == prev+2 {
					return fmt.Sprintf("position %d is missing", prev+1)
				}
				return fmt.Sprintf("positions %d to %d are missing", prev+1, pos-1)
			}},
		// Every row has its commit and a place inside it (commits.go); a
		// row without one is not read by position at all.
		{ProblemRecord, "events", `SELECT e.stream_type, e.stream_id, e.version, 0::bigint, e.commit_id FROM ` + S + `.events e
LEFT JOIN ` + S + `.commits c ON c.id = e.commit_id
WHERE c.id IS NULL OR e.off < 1 OR e.off > c.last - c.first + 1 ORDER BY 1, 2, 3`,
			func(ver, commit int64) string {
				return fmt.Sprintf("version %d's commit %d is missing or does not hold the row's place", ver, commit)
			}},
		// Commits hold disjoint runs of positions.
		{ProblemRecord, "commits", `SELECT ''::bytea, ''::bytea, 0::bigint, first, prev FROM (
	SELECT first, lag(last) OVER (ORDER BY last) AS prev FROM ` + S + `.commits) x
WHERE first <= prev ORDER BY first`,
			func(first, prev int64) string {
				return fmt.Sprintf("a commit starting at position %d overlaps the one before it, which ends at %d", first, prev)
			}},
		{ProblemVersionGap, "events", `SELECT stream_type, stream_id, version, position, prev FROM (
	SELECT stream_type, stream_id, e.version, e.position,
		coalesce(lag(e.version) OVER (PARTITION BY stream_type, stream_id ORDER BY e.version), t.version, 0) AS prev
	FROM ` + S + `.event_log e LEFT JOIN ` + S + `.truncated_streams t USING (stream_type, stream_id)) x
WHERE version <> prev + 1 AND NOT EXISTS (SELECT 1 FROM ` + S + `.deleted_streams d
	WHERE d.stream_type = x.stream_type AND d.stream_id = x.stream_id AND d.mode = 2 AND d.version = x.version)
ORDER BY stream_type, stream_id, version`,
			func(ver, prev int64) string {
				if prev == 0 {
					return fmt.Sprintf("the stream starts at version %d", ver)
				}
				return fmt.Sprintf("version %d follows version %d", ver, prev)
			}},
		{ProblemVersionOrder, "events", `SELECT stream_type, stream_id, version, position, prev FROM (
	SELECT stream_type, stream_id, version, position,
		lag(position) OVER (PARTITION BY stream_type, stream_id ORDER BY version) AS prev
	FROM ` + S + `.event_log) x
WHERE position <= prev ORDER BY stream_type, stream_id, version`,
			func(pos, prev int64) string {
				return fmt.Sprintf("position %d is not after the previous version's position %d", pos, prev)
			}},
		{ProblemIndexMissing, "streams", `SELECT e.stream_type, e.stream_id, e.version, e.position, coalesce(s.version, -1) FROM (
	SELECT DISTINCT ON (stream_type, stream_id) stream_type, stream_id, version, position
	FROM ` + S + `.event_log ORDER BY stream_type, stream_id, version DESC) e
LEFT JOIN ` + S + `.streams s USING (stream_type, stream_id)
WHERE s.version IS NULL OR s.version < e.version ORDER BY 1, 2`,
			func(ver, rowVer int64) string {
				if rowVer < 0 {
					return "the stream has events but no streams row"
				}
				return fmt.Sprintf("the streams row says version %d, the events reach version %d", rowVer, ver)
			}},
		// A deleted stream's row holds deletedBase + its version.
		{ProblemIndexAhead, "streams", `SELECT s.stream_type, s.stream_id, s.version, 0::bigint, greatest(coalesce(max(e.version), 0), coalesce(max(t.version), 0)) FROM ` + S + `.streams s
LEFT JOIN ` + S + `.events e USING (stream_type, stream_id)
LEFT JOIN ` + S + `.truncated_streams t USING (stream_type, stream_id)
GROUP BY s.stream_type, s.stream_id, s.version
HAVING (CASE WHEN s.version >= ` + fmt.Sprint(deletedBase) + ` THEN s.version - ` + fmt.Sprint(deletedBase) + ` ELSE s.version END) > greatest(coalesce(max(e.version), 0), coalesce(max(t.version), 0)) ORDER BY 1, 2`,
			func(ver, evVer int64) string {
				return fmt.Sprintf("the streams row says version %d, the events reach version %d", ver, evVer)
			}},
		{ProblemSnapshot, "snapshots", `SELECT n.stream_type, n.stream_id, n.version, 0::bigint, coalesce(s.version, 0) FROM ` + S + `.snapshots n
LEFT JOIN ` + S + `.streams s USING (stream_type, stream_id)
WHERE n.version <= 0 OR n.time_ns < 0 OR n.time_ns >= 1000000000 OR n.version > coalesce(s.version, 0) ORDER BY 1, 2`,
			func(ver, head int64) string {
				return fmt.Sprintf("snapshot at version %d (stream at version %d) is out of range or ahead of its stream", ver, head)
			}},
		{ProblemIdempotency, "idempotency", `SELECT k.stream_type, k.stream_id, k.version, k.position, coalesce(s.version, 0) FROM ` + S + `.idempotency k
LEFT JOIN ` + S + `.streams s USING (stream_type, stream_id)
WHERE k.version < 0 OR k.position < 0 OR k.time_ns < 0 OR k.time_ns >= 1000000000
	OR k.version > coalesce(s.version, 0) OR k.position > (SELECT position FROM ` + S + `.log_head WHERE id = 1) ORDER BY k.key`,
			func(ver, head int64) string {
				return fmt.Sprintf("idempotency record at version %d points past its stream (version %d) or the head", ver, head)
			}},
		{ProblemCheckpoint, "checkpoints", `SELECT name, ''::bytea, 0::bigint, position, 0::bigint FROM ` + S + `.checkpoints
WHERE position > (SELECT position FROM ` + S + `.log_head WHERE id = 1) ORDER BY name`,
			nil},
	}
	for _, c := range checks {
		rows, err := tx.Query(ctx, c.sql+` LIMIT `+fmt.Sprint(storekit.MaxVerifyProblems+1))
		if err != nil {
			return storekit.VerifyReport{}, s.fail(ctx, op+" ("+c.kind+")", err)
		}
		for rows.Next() {
			var typ, id []byte
			var ver, pos, x int64
			if err := rows.Scan(&typ, &id, &ver, &pos, &x); err != nil {
				rows.Close()
				return storekit.VerifyReport{}, s.fail(ctx, op+" ("+c.kind+")", err)
			}
			p := storekit.VerifyProblem{Kind: c.kind, Table: c.table, Stream: runtime.StreamID{Type: string(typ), ID: string(id)},
				Version: uint64(max(ver, 0)), Position: uint64(max(pos, 0))}
			switch c.kind {
			case ProblemPositionGap:
				p.Detail = c.detail(pos, x)
			case ProblemRecord:
				if c.table == "commits" {
					p.Detail = c.detail(pos, x)
				} else {
					p.Detail = c.detail(ver, x)
				}
			case ProblemVersionOrder:
				p.Detail = c.detail(pos, x)
			case ProblemCheckpoint:
				p.Detail = fmt.Sprintf("checkpoint %q is past the head %d", typ, head)
				p.Stream = runtime.StreamID{}
			default:
				p.Detail = c.detail(ver, x)
			}
			rep.Add(p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return storekit.VerifyReport{}, s.fail(ctx, op+" ("+c.kind+")", err)
		}
	}
	var maxPos int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM `+S+`.event_log`).Scan(&maxPos); err != nil {
		return storekit.VerifyReport{}, s.fail(ctx, op, err)
	}
	if maxPos != head {
		rep.Add(storekit.VerifyProblem{Kind: ProblemHead, Table: "log_head",
			Detail: fmt.Sprintf("log_head says position %d, the last event is at position %d", head, maxPos)})
	}
	var durable int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM `+S+`.log_durable`).Scan(&durable); err != nil {
		return storekit.VerifyReport{}, s.fail(ctx, op, err)
	}
	if durable > head {
		rep.Add(storekit.VerifyProblem{Kind: ProblemHead, Table: "log_durable",
			Detail: fmt.Sprintf("log_durable says position %d is durable, past log_head's %d", durable, head)})
	}
	return *rep, nil
}

// StreamInfo describes one stream as Streams lists it: its committed
// version and that version's global position.
type StreamInfo = storekit.StreamInfo

// Streams yields the streams that have at least one committed event,
// ordered by type then id (bytewise), optionally only those of stream type
// typ ("" for all), starting after the stream after (the zero StreamID to
// start at the beginning). Pass the last stream of one page as after to get
// the next page. It implements storekit.StreamLister.
func (s *Store) Streams(ctx context.Context, typ string, after runtime.StreamID) iter.Seq2[StreamInfo, error] {
	return func(yield func(StreamInfo, error) bool) {
		const op = "list streams"
		S := pgx.Identifier{s.opt.schema}.Sanitize()
		for {
			leave, err := s.begin(ctx, op)
			if err != nil {
				yield(StreamInfo{}, err)
				return
			}
			rows, err := s.pool.Query(ctx, `SELECT s.stream_type, s.stream_id, s.version, coalesce((SELECT e.position FROM `+S+`.event_log e
	WHERE e.stream_type = s.stream_type AND e.stream_id = s.stream_id AND e.version = s.version), 0)
FROM `+S+`.streams s
WHERE s.version > 0 AND ($1::bytea IS NULL OR s.stream_type = $1) AND (s.stream_type, s.stream_id) > ($2::bytea, $3::bytea)
ORDER BY s.stream_type, s.stream_id LIMIT $4`, nilIfEmpty(typ), []byte(after.Type), []byte(after.ID), pageSize)
			if err != nil {
				leave()
				yield(StreamInfo{}, s.fail(ctx, op, err))
				return
			}
			var page []StreamInfo
			var serr error
			for rows.Next() {
				var t, id []byte
				var v, pos int64
				if serr = rows.Scan(&t, &id, &v, &pos); serr != nil {
					break
				}
				page = append(page, StreamInfo{Stream: runtime.StreamID{Type: string(t), ID: string(id)}, Version: uint64(v), LastPosition: uint64(pos)})
			}
			rows.Close()
			leave()
			if err := errors.Join(serr, rows.Err()); err != nil {
				yield(StreamInfo{}, s.fail(ctx, op, err))
				return
			}
			for _, info := range page {
				if !yield(info, nil) {
					return
				}
				after = info.Stream
			}
			if len(page) < pageSize {
				return
			}
		}
	}
}

func nilIfEmpty(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
