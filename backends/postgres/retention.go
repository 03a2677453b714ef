package postgres

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
)

// Retention (see lifecycle.Retention): idempotency keys that expire, and
// truncation of the log.
//
// Keys. Expiry is computed from a record's time and the store's TTL, on
// this process's clock (the one that stamps the records). Before a keyed
// append or SaveIdempotency, the key's record is deleted if it has
// expired, so that the append records it afresh; LoadIdempotency reports
// an expired record as not found; PurgeExpiredKeys deletes every expired
// record through the index on (time_s, time_ns).
//
// Truncation. TruncateLog is one transaction: it records, in
// truncated_streams, each affected stream's last removed version, deletes
// the events and moves the mark in log_truncated (locked first, so
// truncations run one at a time). ReadStream asks truncated_streams in the
// same round trip as each page (see readStreamPage).

// migrationRetention is schema version 4.
const migrationRetention = `
CREATE INDEX idempotency_time ON {{S}}.idempotency (time_s, time_ns);

CREATE TABLE {{S}}.log_truncated (
	id       int    PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL CHECK (position >= 0),
	removed  bigint NOT NULL CHECK (removed >= 0)
);
INSERT INTO {{S}}.log_truncated (id, position, removed) VALUES (1, 0, 0);

CREATE TABLE {{S}}.truncated_streams (
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL CHECK (version > 0),
	PRIMARY KEY (stream_type, stream_id)
);
`

// WithIdempotencyTTL makes idempotency keys expire ttl after they were
// recorded (see lifecycle.Retention); 0, the default, keeps them for ever.
// Choose a ttl longer than the longest time a client may retry a command.
// Expiry follows the clock of WithClock; processes sharing a schema should
// use the same ttl.
func WithIdempotencyTTL(ttl time.Duration) Option {
	return func(o *options) { o.keyTTL = max(ttl, 0) }
}

var _ lifecycle.Retention = (*Store)(nil)

// sql returns q with the store's quoted schema name in place of {{S}}.
func (s *Store) sql(q string) string {
	return strings.ReplaceAll(q, "{{S}}", pgx.Identifier{s.opt.schema}.Sanitize())
}

// keyCutoff returns the time at or before which a record has expired, as
// (seconds, nanoseconds), and whether keys expire at all.
func (s *Store) keyCutoff() (int64, int32, bool) {
	if s.opt.keyTTL <= 0 {
		return 0, 0, false
	}
	c := storekit.NormalizeTime(time.Time{}, s.opt.now).Add(-s.opt.keyTTL)
	return c.Unix(), int32(c.Nanosecond()), true
}

// expireKeySQL deletes the record of key $1 if it was recorded at or
// before ($2 seconds, $3 nanoseconds).
const expireKeySQL = `DELETE FROM {{S}}.idempotency WHERE key = $1 AND (time_s, time_ns) <= ($2, $3)`

// expireKey deletes key's record if it has expired, in a round trip of its
// own (the append paths queue it ahead of the append instead, see
// queueExpire). A concurrent append
// with the same key either sees the record gone and records it itself, or
// records it first (a fresh record, which this deletes not).
func (s *Store) expireKey(ctx context.Context, op, key string) error {
	cs, cn, ok := s.keyCutoff()
	if !ok || key == "" {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.sql(expireKeySQL), []byte(key), cs, cn); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// expiredRecord reports whether a record LoadIdempotency read has expired.
func (s *Store) expiredRecord(rec runtime.IdempotencyRecord) bool {
	return lifecycle.IdempotencyExpired(rec, s.opt.keyTTL, s.opt.now())
}

// PurgeExpiredKeys deletes the expired idempotency records and returns how
// many it deleted.
func (s *Store) PurgeExpiredKeys(ctx context.Context) (uint64, error) {
	const op = "purge expired idempotency keys"
	leave, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer leave()
	cs, cn, ok := s.keyCutoff()
	if !ok {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, s.sql(`DELETE FROM {{S}}.idempotency WHERE (time_s, time_ns) <= ($1, $2)`), cs, cn)
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return uint64(tag.RowsAffected()), nil
}

// Truncated returns the last truncated position, 0 if none.
func (s *Store) Truncated(ctx context.Context) (uint64, error) {
	const op = "truncated"
	leave, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer leave()
	var pos int64
	if err := s.pool.QueryRow(ctx, s.sql(`SELECT position FROM {{S}}.log_truncated WHERE id = 1`)).Scan(&pos); err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return uint64(pos), nil
}

// TruncateLog deletes the events at positions ≤ through in one transaction
// (see lifecycle.Retention and the comment at the top of this file).
func (s *Store) TruncateLog(ctx context.Context, through uint64) (lifecycle.TruncateResult, error) {
	op := fmt.Sprintf("truncate the log through position %d", through)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return lifecycle.TruncateResult{}, err
	}
	defer leave()
	if through > runtime.MaxVersion {
		return lifecycle.TruncateResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrInvalid)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	var cur, durable int64
	if err := tx.QueryRow(ctx, s.sql(`SELECT position, (SELECT coalesce(max(position), 0) FROM {{S}}.log_durable)
FROM {{S}}.log_truncated WHERE id = 1 FOR UPDATE`)).Scan(&cur, &durable); err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	if int64(through) <= cur {
		return lifecycle.TruncateResult{Through: uint64(cur)}, nil
	}
	if int64(through) >= durable {
		return lifecycle.TruncateResult{}, fmt.Errorf("cqrsgen: postgres: %s: %w: the head is %d and the newest event is always kept", op, runtime.ErrInvalid, durable)
	}
	if _, err := tx.Exec(ctx, s.sql(`INSERT INTO {{S}}.truncated_streams AS t (stream_type, stream_id, version)
SELECT stream_type, stream_id, max(version) FROM {{S}}.event_log
WHERE commit_last > $1 AND commit_first <= $2 AND off > $1 - commit_first + 1 AND off <= $2 - commit_first + 1
GROUP BY stream_type, stream_id
ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = greatest(t.version, excluded.version)`), cur, int64(through)); err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	tag, err := tx.Exec(ctx, s.sql(`DELETE FROM {{S}}.events e USING {{S}}.commits c
WHERE e.commit_id = c.id AND c.last > $1 AND c.first <= $2 AND e.off > $1 - c.first + 1 AND e.off <= $2 - c.first + 1`), cur, int64(through))
	if err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	removed := tag.RowsAffected()
	// A commit wholly truncated has no rows left (commits.go).
	if _, err := tx.Exec(ctx, s.sql(`DELETE FROM {{S}}.commits WHERE last > $1 AND last <= $2`), cur, int64(through)); err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	if _, err := tx.Exec(ctx, s.sql(`UPDATE {{S}}.log_truncated SET position = $1, removed = removed + $2 WHERE id = 1`), int64(through), removed); err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return lifecycle.TruncateResult{}, s.fail(ctx, op, unknownOutcome("commit", err))
	}
	return lifecycle.TruncateResult{Through: through, Removed: uint64(removed)}, nil
}

// readStreamPage reads a page of a ReadStream after version after and, in
// the same round trip, the stream's last truncated version. The page is
// read first: a truncation that removed rows the page would have held
// committed before the lookup, which then sees it. A stream truncated
// beyond after, or a page that does not start at after+1 (a truncation
// that overtook a read of several pages), is a *runtime.TruncatedError.
func (s *Store) readStreamPage(ctx context.Context, op string, stream runtime.StreamID, after int64) ([]runtime.Record, error) {
	leave, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer leave()
	typ, id := []byte(stream.Type), []byte(stream.ID)
	b := &pgx.Batch{}
	b.Queue(s.q.readStream, typ, id, after, pageSize)
	b.Queue(s.sql(`SELECT coalesce(max(version), 0) FROM {{S}}.truncated_streams WHERE stream_type = $1 AND stream_id = $2`), typ, id)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	out, err := s.scanRecords(ctx, op, rows, err)
	var through int64
	if qerr := br.QueryRow().Scan(&through); qerr != nil && err == nil {
		return nil, s.fail(ctx, op, qerr)
	}
	if through > after || (len(out) > 0 && out[0].Version != uint64(after)+1 && through > 0) {
		return nil, &runtime.TruncatedError{Stream: stream, After: uint64(after), Through: max(uint64(through), uint64(after)+1)}
	}
	return out, err
}

var _ lifecycle.CheckpointLister = (*Store)(nil)

// Checkpoints yields every checkpoint, ordered by name (bytewise).
func (s *Store) Checkpoints(ctx context.Context) iter.Seq2[lifecycle.CheckpointInfo, error] {
	return func(yield func(lifecycle.CheckpointInfo, error) bool) {
		const op = "list checkpoints"
		out, err := func() ([]lifecycle.CheckpointInfo, error) {
			leave, err := s.begin(ctx, op)
			if err != nil {
				return nil, err
			}
			defer leave()
			rows, err := s.pool.Query(ctx, s.sql(`SELECT name, position FROM {{S}}.checkpoints ORDER BY name`))
			if err != nil {
				return nil, s.fail(ctx, op, err)
			}
			defer rows.Close()
			var out []lifecycle.CheckpointInfo
			for rows.Next() {
				var name []byte
				var pos int64
				if err := rows.Scan(&name, &pos); err != nil {
					return out, s.fail(ctx, op, err)
				}
				out = append(out, lifecycle.CheckpointInfo{Name: string(name), Position: uint64(max(pos, 0))})
			}
			if err := rows.Err(); err != nil {
				return out, s.fail(ctx, op, err)
			}
			return out, nil
		}()
		for _, c := range out {
			if !yield(c, nil) {
				return
			}
		}
		if err != nil {
			yield(lifecycle.CheckpointInfo{}, err)
		}
	}
}

// overtaken returns the error of a ReadAll whose next position, missing,
// was truncated while the read ran (nil when it was not truncated): the
// read has skipped events, which a reader must know.
func (s *Store) overtaken(ctx context.Context, op string, missing uint64) error {
	var tr int64
	if err := s.pool.QueryRow(ctx, s.sql(`SELECT position FROM {{S}}.log_truncated WHERE id = 1`)).Scan(&tr); err != nil {
		return s.fail(ctx, op, err)
	}
	if uint64(tr) < missing {
		return nil
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w: the log was truncated through position %d while the read ran; position %d onwards were not read (read again from %d)",
		op, runtime.ErrTruncated, tr, missing, tr)
}
