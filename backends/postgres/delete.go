package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Deleting streams (see lifecycle.StreamDeleter), in one transaction that
// locks the stream's row first, as appends do, so it is ordered with every
// append to the stream. It inserts the tombstone at the next position, sets
// the stream's version to deletedBase plus the tombstone's version, and
// records the delete in deleted_streams. A version at or over deletedBase is
// past runtime.MaxVersion, so the append functions refuse every append to
// the stream (a conflict or "over the limit") without a change of their
// own; Append turns that refusal into a *runtime.DeletedError. A hard
// delete also deletes the stream's events, snapshot and idempotency keys
// with ordinary DELETEs (VACUUM reclaims the space, as for any deleted
// rows) and records each run of removed positions in holes, so that Verify
// tells them from lost rows. The transaction commits synchronously and
// records the durable head in it, so the tombstone is durable and visible
// to readers when DeleteStream returns.

// migrationTombstoneCopy (version 6) keeps a copy of each tombstone's time
// and data in deleted_streams: a truncation of the log may remove the
// tombstone's event row while the stream stays deleted, and appends, deletes
// and reads still need the tombstone. Rows of version 5 have no copy (NULL)
// and read the event row, as before.
const migrationTombstoneCopy = `
ALTER TABLE {{S}}.deleted_streams ADD COLUMN time_s bigint, ADD COLUMN time_ns integer, ADD COLUMN data bytea;
`

// deletedBase marks a deleted stream's row in streams: its version is
// deletedBase + the tombstone's version.
const deletedBase = runtime.MaxVersion + 1

var _ lifecycle.StreamDeleter = (*Store)(nil)

// DeleteStream deletes a stream (see lifecycle.StreamDeleter).
func (s *Store) DeleteStream(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, error) {
	op := fmt.Sprintf("%s delete of %s", req.Mode, req.Stream)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return lifecycle.DeleteResult{}, err
	}
	defer leave()
	if err := lifecycle.ValidateDelete(req); err != nil {
		return lifecycle.DeleteResult{}, fmt.Errorf("cqrsgen: postgres: %w", err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return lifecycle.DeleteResult{}, s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	res, write, err := s.deleteTx(ctx, tx, req)
	if err != nil {
		var de *runtime.DecodeError
		if errors.Is(err, runtime.ErrNotFound) || errors.As(err, &de) {
			return lifecycle.DeleteResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
		}
		return lifecycle.DeleteResult{}, s.fail(ctx, op, err)
	}
	if !write {
		return res, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return lifecycle.DeleteResult{}, s.fail(ctx, op, afterSend("commit", err))
	}
	s.signal()
	s.notifier.kick()
	return res, nil
}

// deleteTx runs the delete in tx, reporting whether it wrote anything to
// commit.
func (s *Store) deleteTx(ctx context.Context, tx pgx.Tx, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, bool, error) {
	S := pgx.Identifier{s.opt.schema}.Sanitize()
	typ, id := []byte(req.Stream.Type), []byte(req.Stream.ID)
	var raw int64
	err := tx.QueryRow(ctx, `SELECT version FROM `+S+`.streams WHERE stream_type = $1 AND stream_id = $2 FOR UPDATE`, typ, id).Scan(&raw)
	if isNoRows(err) || (err == nil && raw == 0) {
		return lifecycle.DeleteResult{}, false, fmt.Errorf("the stream has no records: %w", runtime.ErrNotFound)
	}
	if err != nil {
		return lifecycle.DeleteResult{}, false, err
	}
	version := uint64(raw)
	var prev *runtime.Tombstone
	if version >= deletedBase {
		t, err := s.tombstone(ctx, tx, req.Stream)
		if err != nil {
			return lifecycle.DeleteResult{}, false, err
		}
		if t.Mode == runtime.HardDelete || req.Mode == runtime.SoftDelete {
			return lifecycle.DeleteResult{Tombstone: t, Already: true}, false, nil
		}
		prev, version = &t, t.Version
	}
	t := runtime.Tombstone{Stream: req.Stream, Mode: req.Mode, Version: version + 1, Events: version}
	res := lifecycle.DeleteResult{Events: version}
	if prev != nil {
		t.Events, res.Events = prev.Events, prev.Events
	}
	var positions []int64
	if req.Mode == runtime.HardDelete {
		// Ordered with truncations (which lock the row FOR UPDATE first):
		// a position is then either truncated or a hole, never counted
		// as both, and the two never wait for each other's rows.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+S+`.log_truncated WHERE id = 1 FOR SHARE`); err != nil {
			return lifecycle.DeleteResult{}, false, err
		}
		rows, err := tx.Query(ctx, `SELECT position, octet_length(data) + coalesce(octet_length(metadata), 0) FROM `+S+`.event_log
WHERE stream_type = $1 AND stream_id = $2 ORDER BY position`, typ, id)
		if err != nil {
			return lifecycle.DeleteResult{}, false, err
		}
		for rows.Next() {
			var pos, n int64
			if err := rows.Scan(&pos, &n); err != nil {
				rows.Close()
				return lifecycle.DeleteResult{}, false, err
			}
			positions = append(positions, pos)
			res.Bytes += n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return lifecycle.DeleteResult{}, false, err
		}
		t.Removed = uint64(len(positions))
		// idempotency has no index by stream: a count scans the table, so
		// only a dry run counts; a delete takes the DELETE's row count.
		countKeys := `0::bigint`
		if req.DryRun {
			countKeys = `(SELECT count(*) FROM ` + S + `.idempotency WHERE stream_type = $1 AND stream_id = $2)`
		}
		var snaps, keys int64
		if err := tx.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM `+S+`.snapshots WHERE stream_type = $1 AND stream_id = $2), `+countKeys, typ, id).Scan(&snaps, &keys); err != nil {
			return lifecycle.DeleteResult{}, false, err
		}
		res.Snapshot, res.IdempotencyKeys = snaps > 0, uint64(keys)
	}
	res.Tombstone = t
	if req.DryRun {
		return res, false, nil
	}

	b := &pgx.Batch{}
	idemDelete := -1 // the index of the DELETE of the stream's keys in b
	// Commit synchronously whatever the session's default, so that the
	// durable head recorded below (queries.flush) is durable.
	b.Queue(`SET LOCAL synchronous_commit = on`)
	if req.Mode == runtime.HardDelete {
		b.Queue(`DELETE FROM `+S+`.events WHERE stream_type = $1 AND stream_id = $2`, typ, id)
		b.Queue(`DELETE FROM `+S+`.snapshots WHERE stream_type = $1 AND stream_id = $2`, typ, id)
		// Lock order as in append_events: stream row, idempotency keys, log_head.
		idemDelete = b.Len()
		b.Queue(`DELETE FROM `+S+`.idempotency WHERE stream_type = $1 AND stream_id = $2`, typ, id)
		// What a truncation removed is moot now: ReadStream yields the
		// tombstone alone, until a truncation removes that too.
		b.Queue(`DELETE FROM `+S+`.truncated_streams WHERE stream_type = $1 AND stream_id = $2`, typ, id)
		for i := 0; i < len(positions); {
			j := i
			for j+1 < len(positions) && positions[j+1] == positions[j]+1 {
				j++
			}
			b.Queue(`INSERT INTO `+S+`.holes (first, last) VALUES ($1, $2)`, positions[i], positions[j])
			i = j + 1
		}
	}
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return lifecycle.DeleteResult{}, false, err
		}
		if i == idemDelete {
			res.IdempotencyKeys = uint64(tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return lifecycle.DeleteResult{}, false, err
	}
	t.Time = storekit.NormalizeTime(s.opt.now(), nil)
	rec := lifecycle.TombstoneRecord(t)
	// The tombstone's row, then its position (commits.go).
	var pos int64
	if err := tx.QueryRow(ctx, `WITH e AS (INSERT INTO `+S+`.events (commit_id, off, stream_type, stream_id, version, name, schema, time_s, time_ns, metadata, data, event_id)
VALUES (nextval('`+S+`.commit_ids'), 1, $1, $2, $3, $4, $5, $6, $7, NULL, $8, $9) RETURNING commit_id),
h AS (UPDATE `+S+`.log_head SET position = position + 1 FROM e WHERE id = 1 RETURNING position, e.commit_id)
INSERT INTO `+S+`.commits (id, first, last) SELECT commit_id, position, position FROM h RETURNING last`, typ, id, int64(t.Version), []byte(rec.Name), int64(rec.Schema),
		rec.Time.Unix(), int32(rec.Time.Nanosecond()), rec.Data, pgtype.UUID{Bytes: runtime.NewEventID(), Valid: true}).Scan(&pos); err != nil {
		return lifecycle.DeleteResult{}, false, err
	}
	t.Position = uint64(pos)
	b = &pgx.Batch{}
	b.Queue(`UPDATE `+S+`.streams SET version = $3 WHERE stream_type = $1 AND stream_id = $2`, typ, id, int64(deletedBase+t.Version))
	b.Queue(`INSERT INTO `+S+`.deleted_streams (stream_type, stream_id, mode, position, version, time_s, time_ns, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (stream_type, stream_id) DO UPDATE SET mode = excluded.mode, position = excluded.position, version = excluded.version,
	time_s = excluded.time_s, time_ns = excluded.time_ns, data = excluded.data`,
		typ, id, int16(t.Mode), pos, int64(t.Version), rec.Time.Unix(), int32(rec.Time.Nanosecond()), rec.Data)
	b.Queue(s.q.flush)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return lifecycle.DeleteResult{}, false, err
	}
	res.Tombstone = t
	return res, true, nil
}

// tombstone reads the tombstone of a deleted stream: its event row, or
// when a truncation removed that, the copy in deleted_streams.
func (s *Store) tombstone(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, stream runtime.StreamID) (runtime.Tombstone, error) {
	S := pgx.Identifier{s.opt.schema}.Sanitize()
	rows, err := q.Query(ctx, `SELECT `+eventCols+` FROM `+S+`.event_log
WHERE stream_type = $1 AND stream_id = $2
	AND version = (SELECT version FROM `+S+`.deleted_streams WHERE stream_type = $1 AND stream_id = $2)`,
		[]byte(stream.Type), []byte(stream.ID))
	if err != nil {
		return runtime.Tombstone{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return runtime.Tombstone{}, err
		}
		rows.Close()
		return s.tombstoneCopy(ctx, q, stream)
	}
	rec, err := scanRecord(rows)
	if err != nil {
		return runtime.Tombstone{}, err
	}
	return runtime.TombstoneOf(rec)
}

// tombstoneCopy reads the copy of a tombstone kept in deleted_streams.
func (s *Store) tombstoneCopy(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, stream runtime.StreamID) (runtime.Tombstone, error) {
	S := pgx.Identifier{s.opt.schema}.Sanitize()
	rows, err := q.Query(ctx, `SELECT position, version, time_s, time_ns, data FROM `+S+`.deleted_streams
WHERE stream_type = $1 AND stream_id = $2 AND data IS NOT NULL`, []byte(stream.Type), []byte(stream.ID))
	if err != nil {
		return runtime.Tombstone{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return runtime.Tombstone{}, err
		}
		return runtime.Tombstone{}, &runtime.DecodeError{Stream: stream, What: "tombstone",
			Err: errors.New("the stream is marked deleted but its tombstone is missing")}
	}
	var pos, ver, sec int64
	var nsec int32
	var data []byte
	if err := rows.Scan(&pos, &ver, &sec, &nsec, &data); err != nil {
		return runtime.Tombstone{}, err
	}
	return runtime.TombstoneOf(runtime.Record{Stream: stream, Version: uint64(ver), Position: uint64(pos),
		Name: runtime.TombstoneEvent, Schema: 1, Time: time.Unix(sec, int64(nsec)).UTC(), Data: data})
}

// deletedAppend is Append's answer when the append functions refused req
// because its stream is deleted (out.actual ≥ deletedBase): the first
// result of a recorded idempotency key, else a *runtime.DeletedError.
func (s *Store) deletedAppend(ctx context.Context, req runtime.AppendRequest, op string, out appendOut) (runtime.AppendResult, error) {
	if out.status == appendDuplicate {
		return s.appendResult(req, op, out)
	}
	if req.IdempotencyKey != "" {
		rec, err := s.loadIdem(ctx, s.pool, req.IdempotencyKey)
		if err == nil {
			return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DuplicateError{Existing: rec})
		}
		if !errors.Is(err, runtime.ErrNotFound) {
			return runtime.AppendResult{}, err
		}
	}
	t, err := s.tombstone(ctx, s.pool, req.Stream)
	if err != nil {
		return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: the stream is deleted: %w", op, err)
	}
	return runtime.AppendResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DeletedError{Tombstone: t})
}

// refuseDeleted is SaveSnapshot's answer when its upsert wrote nothing: a
// *runtime.DeletedError when the stream is deleted (a snapshot saved after a
// hard delete would bring its state back), else nil (a newer snapshot is
// kept).
func (s *Store) refuseDeleted(ctx context.Context, op string, stream runtime.StreamID) error {
	var v int64
	err := s.pool.QueryRow(ctx, s.q.streamVersion, []byte(stream.Type), []byte(stream.ID)).Scan(&v)
	if isNoRows(err) || (err == nil && uint64(v) < deletedBase) {
		return nil
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	t, err := s.tombstone(ctx, s.pool, stream)
	if err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: the stream is deleted: %w", op, err)
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DeletedError{Tombstone: t})
}
