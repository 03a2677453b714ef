package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
)

// SaveSnapshot stores snap unless a snapshot at a higher version is already
// stored; the comparison is made by the upsert itself, so concurrent
// savers cannot move a snapshot backwards.
func (s *Store) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	op := "save snapshot of " + snap.Stream.String()
	leave, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	if err := storekit.ValidateSnapshot(snap); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	t := storekit.NormalizeTime(snap.Time, s.opt.now)
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	tag, err := s.pool.Exec(ctx, s.q.snapSave, []byte(snap.Stream.Type), []byte(snap.Stream.ID), int64(snap.Version),
		[]byte(snap.Schema), t.Unix(), int32(t.Nanosecond()), data, int64(runtime.MaxVersion))
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if tag.RowsAffected() == 0 {
		return s.refuseDeleted(ctx, op, snap.Stream) // delete.go
	}
	return nil
}

// LoadSnapshot returns the stream's latest snapshot or runtime.ErrNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	op := "load snapshot of " + stream.String()
	leave, err := s.begin(ctx, op)
	if err != nil {
		return runtime.Snapshot{}, err
	}
	defer leave()
	if err := runtime.ValidateStream(stream); err != nil {
		return runtime.Snapshot{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	var (
		ver, secs    int64
		nsec         int32
		schema, data []byte
	)
	err = s.pool.QueryRow(ctx, s.q.snapLoad, []byte(stream.Type), []byte(stream.ID)).Scan(&ver, &schema, &secs, &nsec, &data)
	if isNoRows(err) {
		return runtime.Snapshot{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrNotFound)
	}
	if err != nil {
		return runtime.Snapshot{}, s.fail(ctx, op, err)
	}
	if ver <= 0 || uint64(ver) > runtime.MaxVersion || nsec < 0 || nsec >= 1e9 {
		return runtime.Snapshot{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DecodeError{
			Stream: stream, Version: uint64(max(ver, 0)), What: "snapshot",
			Err: fmt.Errorf("version %d, time nanoseconds %d out of range", ver, nsec)})
	}
	if data == nil {
		data = []byte{}
	}
	return runtime.Snapshot{Stream: stream, Version: uint64(ver), Schema: string(schema), Data: data,
		Time: time.Unix(secs, int64(nsec)).UTC()}, nil
}

// SaveCheckpoint records position under name, overwriting (possibly
// backwards) what was there.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	op := fmt.Sprintf("save checkpoint %q", name)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	// Positions are stored bit for bit in a bigint.
	if _, err := s.pool.Exec(ctx, s.q.ckptSave, []byte(name), int64(position)); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// LoadCheckpoint returns the position recorded under name or
// runtime.ErrNotFound.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	op := fmt.Sprintf("load checkpoint %q", name)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer leave()
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return 0, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	var p int64
	err = s.pool.QueryRow(ctx, s.q.ckptLoad, []byte(name)).Scan(&p)
	if isNoRows(err) {
		return 0, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrNotFound)
	}
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return uint64(p), nil
}

// SaveIdempotency records rec if its key is new. A key already recorded
// (or being recorded by a transaction that commits) leaves the store
// unchanged and returns a *runtime.DuplicateError with the first record.
func (s *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	op := fmt.Sprintf("save idempotency key %q", rec.Key)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	if err := runtime.ValidateKey("idempotency key", rec.Key); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	if rec.Version > runtime.MaxVersion {
		return fmt.Errorf("cqrsgen: postgres: %s: %w: version %d", op, runtime.ErrInvalid, rec.Version)
	}
	if err := s.expireKey(ctx, op, rec.Key); err != nil {
		return err
	}
	t := storekit.NormalizeTime(rec.Time, s.opt.now)
	var one int
	err = s.pool.QueryRow(ctx, s.q.idemSave, []byte(rec.Key), []byte(rec.Stream.Type), []byte(rec.Stream.ID),
		int64(rec.Version), int64(rec.Position), t.Unix(), int32(t.Nanosecond()), int64(runtime.MaxVersion)).Scan(&one)
	if err == nil {
		return nil
	}
	if !isNoRows(err) {
		return s.fail(ctx, op, err)
	}
	first, err := s.loadIdem(ctx, s.pool, rec.Key)
	if errors.Is(err, runtime.ErrNotFound) {
		// Not a duplicate: the stream is deleted (delete.go).
		if derr := s.refuseDeleted(ctx, op, rec.Stream); derr != nil {
			return derr
		}
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DuplicateError{Existing: first})
}

// LoadIdempotency returns the record for key or runtime.ErrNotFound.
func (s *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	op := fmt.Sprintf("load idempotency key %q", key)
	leave, err := s.begin(ctx, op)
	if err != nil {
		return runtime.IdempotencyRecord{}, err
	}
	defer leave()
	if err := runtime.ValidateKey("idempotency key", key); err != nil {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	rec, err := s.loadIdem(ctx, s.pool, key)
	if err == nil && s.expiredRecord(rec) {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrNotFound)
	}
	return rec, err
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) loadIdem(ctx context.Context, q querier, key string) (runtime.IdempotencyRecord, error) {
	op := fmt.Sprintf("load idempotency key %q", key)
	var (
		k, typ, id     []byte
		ver, pos, secs int64
		nsec           int32
	)
	err := q.QueryRow(ctx, s.q.idemLoad, []byte(key)).Scan(&k, &typ, &id, &ver, &pos, &secs, &nsec)
	if isNoRows(err) {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, runtime.ErrNotFound)
	}
	if err != nil {
		return runtime.IdempotencyRecord{}, s.fail(ctx, op, err)
	}
	rec := runtime.IdempotencyRecord{
		Key:      string(k),
		Stream:   runtime.StreamID{Type: string(typ), ID: string(id)},
		Version:  uint64(ver),
		Position: uint64(pos),
		Time:     time.Unix(secs, int64(nsec)).UTC(),
	}
	if ver < 0 || uint64(ver) > runtime.MaxVersion || nsec < 0 || nsec >= 1e9 {
		return runtime.IdempotencyRecord{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, &runtime.DecodeError{
			Stream: rec.Stream, What: "idempotency record",
			Err: fmt.Errorf("version %d, time nanoseconds %d out of range", ver, nsec)})
	}
	return rec, nil
}

// Stats returns the store's counters. Events is the head less the
// positions hard deletes removed (delete.go) and the events truncations
// removed (retention.go); positions are otherwise gap-free. DiskBytes is pg_total_relation_size (tables, indexes, TOAST)
// summed over the store's schema. Extra holds "events_bytes" (the events
// table alone), "schema_version", and the pool's "pool_total_conns" and
// "pool_acquired_conns".
func (s *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	leave, err := s.begin(ctx, "stats")
	if err != nil {
		return runtime.Stats{}, err
	}
	defer leave()
	var head, holes, streams, snaps, ckpts, keys, disk, evBytes, ver, truncated int64
	if err := s.pool.QueryRow(ctx, s.q.stats, s.opt.schema).Scan(&head, &holes, &streams, &snaps, &ckpts, &keys, &disk, &evBytes, &ver, &truncated); err != nil {
		return runtime.Stats{}, s.fail(ctx, "stats", err)
	}
	ps := s.pool.Stat()
	return runtime.Stats{
		Events:          uint64(max(head-holes-truncated, 0)),
		Streams:         uint64(streams),
		Snapshots:       uint64(snaps),
		Checkpoints:     uint64(ckpts),
		IdempotencyKeys: uint64(keys),
		Head:            uint64(head),
		DiskBytes:       disk,
		Extra: map[string]int64{
			"events_bytes":        evBytes,
			"schema_version":      ver,
			"pool_total_conns":    int64(ps.TotalConns()),
			"pool_acquired_conns": int64(ps.AcquiredConns()),
		},
	}, nil
}
