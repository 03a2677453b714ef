package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// The data keys of crypto-shredding (runtime.KeyStore) are rows of
// subject_keys, and the streams holding each subject's sealed data rows of
// subject_streams, both created on first use (like the lease table) and
// written with synchronous_commit on, so that a key is durable before any
// event sealed under it can be. Keys are read from the table every time,
// never cached: another process may have forgotten the subject.
//
// ForgetSubject deletes the rows in one transaction. What PostgreSQL still
// holds afterwards, until it is purged (see docs/guide.md, "Crypto-shredding"):
// the dead tuple in the table's pages until VACUUM FULL rewrites the table
// (plain VACUUM frees the space but need not overwrite it); the INSERT's
// record in the write-ahead log until its segment is recycled and
// overwritten, and forever in WAL archives, replicas' copies and backups.

const keysDDL = `
CREATE TABLE IF NOT EXISTS {{S}}.subject_keys (
	subject bytea PRIMARY KEY,
	key_id  bytea NOT NULL,
	key     bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS {{S}}.subject_streams (
	subject     bytea NOT NULL,
	stream_type bytea NOT NULL,
	stream_id   bytea NOT NULL,
	PRIMARY KEY (subject, stream_type, stream_id)
);
`

// keyState holds the key statements once the tables exist.
type keyState struct {
	mu    sync.Mutex
	ready bool
	q     keySQL
}

type keySQL struct {
	get, has, insertKey, insertStream, streams, forgetStreams, forgetKey string
}

// notHardDeleted keeps the rows s of subject_streams whose stream is not
// hard-deleted: such a stream holds no sealed data any more
// (runtime.KeyStore), so neither SubjectStreams nor ForgetSubject lists it.
var notHardDeleted = fmt.Sprintf(` AND NOT EXISTS (SELECT 1 FROM {{S}}.deleted_streams d
	WHERE d.stream_type = s.stream_type AND d.stream_id = s.stream_id AND d.mode = %d)`, runtime.HardDelete)

func newKeySQL(schema string) keySQL {
	r := strings.NewReplacer("{{S}}", schema)
	return keySQL{
		get: r.Replace(`SELECT key_id, key FROM {{S}}.subject_keys WHERE subject = $1`),
		has: r.Replace(`SELECT k.key_id, k.key, EXISTS (SELECT 1 FROM {{S}}.subject_streams s
	WHERE s.subject = $1 AND s.stream_type = $2 AND s.stream_id = $3)
FROM {{S}}.subject_keys k WHERE k.subject = $1`),
		insertKey:    r.Replace(`INSERT INTO {{S}}.subject_keys (subject, key_id, key) VALUES ($1, $2, $3) ON CONFLICT (subject) DO NOTHING`),
		insertStream: r.Replace(`INSERT INTO {{S}}.subject_streams (subject, stream_type, stream_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
		streams: r.Replace(`SELECT s.stream_type, s.stream_id FROM {{S}}.subject_streams s WHERE s.subject = $1` + notHardDeleted +
			` ORDER BY s.stream_type, s.stream_id`),
		forgetStreams: r.Replace(`WITH s AS (DELETE FROM {{S}}.subject_streams WHERE subject = $1 RETURNING stream_type, stream_id)
SELECT s.stream_type, s.stream_id FROM s WHERE true` + notHardDeleted),
		forgetKey: r.Replace(`DELETE FROM {{S}}.subject_keys WHERE subject = $1`),
	}
}

var _ runtime.KeyStore = (*Store)(nil)

// keysBegin is begin, a subject check and the key tables.
func (s *Store) keysBegin(ctx context.Context, op, subject string) (func(), error) {
	if err := runtime.ValidateKey("subject", subject); err != nil {
		return nil, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	return s.keysReady(ctx, op)
}

// keysReady is begin and the key tables.
func (s *Store) keysReady(ctx context.Context, op string) (func(), error) {
	leave, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.ready {
		return leave, nil
	}
	if err := s.keyTables(ctx); err != nil {
		leave()
		return nil, s.fail(ctx, op, fmt.Errorf("creating the key tables: %w", err))
	}
	s.keys.ready = true
	return leave, nil
}

func (s *Store) keyTables(ctx context.Context) error {
	schema, err := s.createOnFirstUse(ctx, keysDDL)
	if err != nil {
		return err
	}
	s.keys.q = newKeySQL(schema)
	return nil
}

func toDataKey(id, key []byte) (runtime.DataKey, error) {
	var k runtime.DataKey
	if len(id) != len(k.ID) || len(key) != len(k.Key) {
		return k, fmt.Errorf("%w: a stored data key has the wrong length", runtime.ErrCorrupt)
	}
	copy(k.ID[:], id)
	copy(k.Key[:], key)
	return k, nil
}

// SubjectKey returns subject's data key, storing fresh as it first when
// the subject has none, and records stream for it (runtime.KeyStore). A
// known key and stream cost one query; a new one a synchronous commit.
func (s *Store) SubjectKey(ctx context.Context, subject string, stream runtime.StreamID, fresh runtime.DataKey) (runtime.DataKey, error) {
	op := "subject key"
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.DataKey{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	leave, err := s.keysBegin(ctx, op, subject)
	if err != nil {
		return runtime.DataKey{}, err
	}
	defer leave()
	var id, key []byte
	var has bool
	sub, typ, sid := []byte(subject), []byte(stream.Type), []byte(stream.ID)
	err = s.pool.QueryRow(ctx, s.keys.q.has, sub, typ, sid).Scan(&id, &key, &has)
	switch {
	case err == nil && has:
		return toDataKey(id, key)
	case err != nil && !isNoRows(err):
		return runtime.DataKey{}, s.fail(ctx, op, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.keys.q.insertKey, sub, fresh.ID[:], fresh.Key[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.keys.q.insertStream, sub, typ, sid); err != nil {
			return err
		}
		return tx.QueryRow(ctx, s.keys.q.get, sub).Scan(&id, &key)
	})
	if err != nil {
		return runtime.DataKey{}, s.fail(ctx, op, err)
	}
	return toDataKey(id, key)
}

// LoadSubjectKey returns subject's data key or runtime.ErrNotFound.
func (s *Store) LoadSubjectKey(ctx context.Context, subject string) (runtime.DataKey, error) {
	op := "load subject key"
	leave, err := s.keysBegin(ctx, op, subject)
	if err != nil {
		return runtime.DataKey{}, err
	}
	defer leave()
	var id, key []byte
	if err := s.pool.QueryRow(ctx, s.keys.q.get, []byte(subject)).Scan(&id, &key); err != nil {
		if isNoRows(err) {
			return runtime.DataKey{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrNotFound)
		}
		return runtime.DataKey{}, s.fail(ctx, op, err)
	}
	return toDataKey(id, key)
}

// SubjectStreams returns the streams recorded for subject's key.
func (s *Store) SubjectStreams(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	op := "subject streams"
	leave, err := s.keysBegin(ctx, op, subject)
	if err != nil {
		return nil, false, err
	}
	defer leave()
	var streams []runtime.StreamID
	found := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id, key []byte
		switch err := tx.QueryRow(ctx, s.keys.q.get, []byte(subject)).Scan(&id, &key); {
		case isNoRows(err):
			return nil
		case err != nil:
			return err
		}
		found = true
		streams, err = scanStreams(tx.Query(ctx, s.keys.q.streams, []byte(subject)))
		return err
	})
	if err != nil {
		return nil, false, s.fail(ctx, op, err)
	}
	return streams, found, nil
}

func scanStreams(rows pgx.Rows, err error) ([]runtime.StreamID, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []runtime.StreamID
	for rows.Next() {
		var typ, id []byte
		if err := rows.Scan(&typ, &id); err != nil {
			return nil, err
		}
		out = append(out, runtime.StreamID{Type: string(typ), ID: string(id)})
	}
	return out, rows.Err()
}

// ForgetSubject deletes subject's key and stream rows in one synchronous
// transaction (see the top of this file for what remains until a purge).
func (s *Store) ForgetSubject(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	op := "forget subject"
	leave, err := s.keysBegin(ctx, op, subject)
	if err != nil {
		return nil, false, err
	}
	defer leave()
	var streams []runtime.StreamID
	found := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
		var err error
		if streams, err = scanStreams(tx.Query(ctx, s.keys.q.forgetStreams, []byte(subject))); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, s.keys.q.forgetKey, []byte(subject))
		found = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return nil, false, s.fail(ctx, op, err)
	}
	if !found {
		streams = nil
	}
	sortStreams(streams)
	return streams, found, nil
}

// sortStreams orders streams by type then id, byte-wise (DELETE … RETURNING
// has no order).
func sortStreams(streams []runtime.StreamID) {
	slices.SortFunc(streams, func(a, b runtime.StreamID) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	})
}

// PurgeForgottenKeys rewrites the key tables (VACUUM FULL) and runs a
// CHECKPOINT, so that the table files no longer hold the keys and stream
// rows ForgetSubject deleted: plain VACUUM frees the space of dead rows
// without necessarily overwriting it. It takes an exclusive lock on the
// two small tables for the rewrite, and CHECKPOINT needs a superuser or the
// pg_checkpoint role. The write-ahead log, archives, replicas' copies and
// backups are beyond it (see docs/guide.md).
func (s *Store) PurgeForgottenKeys(ctx context.Context) error {
	op := "purge forgotten keys"
	leave, err := s.keysReady(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	schema := pgx.Identifier{s.opt.schema}.Sanitize()
	for _, sql := range []string{
		"VACUUM FULL " + schema + ".subject_keys",
		"VACUUM FULL " + schema + ".subject_streams",
		"CHECKPOINT",
	} {
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			return s.fail(ctx, op, err)
		}
	}
	return nil
}
