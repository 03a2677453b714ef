package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vmihailenco/msgpack/v5"
)

// openStore opens a fresh, empty store of the named kind. The returned
// function closes it and removes its data.
func (r *runner) openStore(ctx context.Context, name string) (runtime.Store, func() error, error) {
	switch name {
	case "memory":
		s := memory.New()
		return s, s.Close, nil
	case "pebble":
		dir := r.tempDir("pebble")
		logger := slog.New(slog.NewTextHandler(r.cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
		s, err := pebble.Open(dir, pebble.WithLogger(logger))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: opening pebble store: %w", err)
		}
		return s, func() error {
			err := s.Close()
			if rmErr := os.RemoveAll(dir); err == nil {
				err = rmErr
			}
			return err
		}, nil
	case "postgres":
		s, _, closeAll, err := r.openPostgresSchema(ctx)
		if err != nil {
			return nil, nil, err
		}
		return s, closeAll, nil
	}
	return nil, nil, fmt.Errorf("bench: unknown store %q", name)
}

// pgConnConfig parses dsn as the store does (pgxpool's syntax), so that a
// DSN carrying pool settings such as pool_max_conns also works for the
// single connections opened here: pgx.Connect would send them to the
// server as run-time parameters, and the server refuses them.
func pgConnConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: bad -postgres-dsn: %w", err)
	}
	return cfg.ConnConfig, nil
}

// openPostgresSchema opens a PostgreSQL store in a fresh schema of its
// own and returns it with the schema's name; closeAll closes the store and
// drops the schema. A schema per case: cases never see each other's data
// and the database is left as it was.
func (r *runner) openPostgresSchema(ctx context.Context) (*postgres.Store, string, func() error, error) {
	schema := fmt.Sprintf("cqrsbench_%d_%d", os.Getpid(), r.seq.Add(1))
	s, err := postgres.Open(ctx, r.cfg.PostgresDSN, postgres.WithSchema(schema))
	if err != nil {
		return nil, "", nil, errors.Join(fmt.Errorf("bench: opening postgres store: %w", err), dropSchema(r.cfg.PostgresDSN, schema))
	}
	return s, schema, func() error { return errors.Join(s.Close(), dropSchema(r.cfg.PostgresDSN, schema)) }, nil
}

// dropSchema removes a benchmark schema and everything in it.
func dropSchema(dsn, schema string) error {
	ctx := context.Background()
	cfg, err := pgConnConfig(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: dropping schema %s: %w", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("bench: dropping schema %s: %w", schema, err)
	}
	return nil
}

// rawConnsMax caps the raw PostgreSQL side's connections: a default
// server (max_connections = 100) must also hold the store sides' pools,
// which are open at the same time.
const rawConnsMax = 64

// openRawPostgres opens a pool of conns connections for a raw PostgreSQL
// limit and creates, in a schema of its own named after prefix, a table
// of the store's events table's shape (the same columns and indexes: a
// bigserial primary key, UNIQUE (stream_type, stream_id, version)),
// named events; it returns the pool, the schema's quoted name (the table
// is schema + ".events") and the function that closes the pool and drops
// the schema.
func (r *runner) openRawPostgres(ctx context.Context, prefix string, conns int) (*pgxpool.Pool, string, func() error, error) {
	cfg, err := pgxpool.ParseConfig(r.cfg.PostgresDSN)
	if err != nil {
		return nil, "", nil, fmt.Errorf("bench: bad -postgres-dsn: %w", err)
	}
	cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
	schema := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), r.seq.Add(1))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("bench: raw postgres: %w", err)
	}
	closeAll := func() error {
		pool.Close()
		return dropSchema(r.cfg.PostgresDSN, schema)
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+quoted+
		"; CREATE TABLE "+quoted+`.events (
	position    bigserial PRIMARY KEY,
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	name        bytea  NOT NULL,
	schema      bigint NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL,
	metadata    bytea,
	data        bytea  NOT NULL,
	event_id    uuid,
	UNIQUE (stream_type, stream_id, version)
)`); err != nil {
		return nil, "", nil, errors.Join(fmt.Errorf("bench: raw postgres: %w", err), closeAll())
	}
	return pool, quoted, closeAll, nil
}

// openConns opens every one of the pool's conns connections now, not
// during the first turn, and runs prepare (if not nil) on each.
func openConns(ctx context.Context, pool *pgxpool.Pool, conns int, prepare func(*pgx.Conn) error) error {
	held := make([]*pgxpool.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range conns {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("bench: raw postgres: %w", err)
		}
		held = append(held, c)
		if prepare != nil {
			if err := prepare(c.Conn()); err != nil {
				return fmt.Errorf("bench: raw postgres: %w", err)
			}
		}
	}
	return nil
}

// rawWriters returns what the raw PostgreSQL append limits keep per
// writer: a blank batch to stamp as the stores stamp theirs
// (storekit.Stamp: one block of ids and one clock reading per append), its
// stream id, and the version it counts itself (only writer w touches
// versions[w]).
func rawWriters(writers, batch int) (blank [][]runtime.EventData, ids [][]byte, versions []int64) {
	blank, ids = make([][]runtime.EventData, writers), make([][]byte, writers)
	for w := range writers {
		blank[w] = make([]runtime.EventData, batch)
		ids[w] = fmt.Appendf(nil, "writer-%d", w)
	}
	return blank, ids, make([]int64, writers)
}

// rawPostgresAppend is the limit of the PostgreSQL append rows, in the
// manner of pgbench: each writer, on a connection of its own (up to
// rawConnsMax; beyond, writers share them), inserts `batch` rows into a
// table of the store's events table's shape (the same columns and
// indexes: a bigserial primary key, UNIQUE (stream_type, stream_id,
// version)), the rows the store would write for the sample events, each
// writer to its own stream with versions it counts itself, with one INSERT
// per transaction, committed under the server's settings. What the store
// adds is left out: no counter row (positions come from a sequence, so not
// in commit order), no version check, no durable head.
//
// Until 2026-12-06 the table was (id bigserial, data bytea): a narrower
// row with one index, which made the limit of a 100-row insert about 1.3x
// higher than inserting the rows the store writes (docs/benchmarks-history.md).
func (r *runner) rawPostgresAppend(ctx context.Context, name string, batch, writers int) (*appendSide, error) {
	conns := min(writers, rawConnsMax)
	pool, schema, closeAll, err := r.openRawPostgres(ctx, "cqrsbench_raw", conns)
	if err != nil {
		return nil, err
	}
	table := schema + ".events"
	if err := openConns(ctx, pool, conns, nil); err != nil {
		return nil, errors.Join(err, closeAll())
	}
	data := samplePayload()
	datas := make([][]byte, batch)
	for i := range datas {
		datas[i] = data
	}
	const cols = ` (stream_type, stream_id, version, name, schema, time_s, time_ns, data, event_id)`
	sql := "INSERT INTO " + table + cols + ` VALUES ($1, $2, $3 + 1, $4, 1, $5, $6, $7, $8)`
	if batch > 1 {
		sql = "INSERT INTO " + table + cols + `
SELECT $1, $2, $3 + x.i, $4, 1, $5, $6, x.data, x.eid
FROM unnest($7::bytea[], $8::uuid[]) WITH ORDINALITY AS x(data, eid, i)`
	}
	stream := []byte(streamType)
	blank, ids, versions := rawWriters(writers, batch)
	row := Row{Case: name, Group: "append", Subject: "raw postgres (the store's event rows, one INSERT per transaction, a connection per writer)",
		Kind: KindLimit, Synced: ptr(true), Batch: batch, Writers: writers}
	if conns < writers {
		row.Subject = fmt.Sprintf("raw postgres (the store's event rows, one INSERT per transaction, %d writers sharing %d connections)", writers, conns)
	}
	return &appendSide{
		label: name + " raw postgres",
		row:   row,
		op: func(ctx context.Context, w int) error {
			stamp := storekit.NewStamp(runtime.AppendRequest{Events: blank[w]}, time.Now)
			now := stamp.Now()
			var err error
			if batch == 1 {
				id, _ := stamp.Event(0)
				_, err = pool.Exec(ctx, sql, stream, ids[w], versions[w], []byte(eventName), now.Unix(), int32(now.Nanosecond()),
					data, pgtype.UUID{Bytes: id, Valid: true})
			} else {
				eids := make([]pgtype.UUID, batch)
				for i := range eids {
					id, _ := stamp.Event(i)
					eids[i] = pgtype.UUID{Bytes: id, Valid: true}
				}
				_, err = pool.Exec(ctx, sql, stream, ids[w], versions[w], []byte(eventName), now.Unix(), int32(now.Nanosecond()),
					datas, eids)
			}
			if err == nil {
				versions[w] += int64(batch)
			}
			return err
		},
		close: closeAll,
	}, nil
}

// durable reports whether a store syncs every append.
func durable(store string) *bool {
	if store == "memory" {
		return nil
	}
	return ptr(true)
}

// deposited mirrors the bank example's Deposited event for reflection
// msgpack and store-level payloads.
type deposited struct {
	Amount    int64
	Reference string
}

var sampleEvent = deposited{Amount: 12_345, Reference: "bench-ref-000042"}

// samplePayload is the encoded body of every store-level event: the sample
// Deposited event encoded with reflection msgpack.
func samplePayload() []byte {
	b, err := msgpack.Marshal(sampleEvent)
	if err != nil {
		panic(fmt.Sprintf("bench: encoding the sample event: %v", err)) // a fixed struct: cannot fail
	}
	return b
}

// eventName is the wire name of the sample event.
const eventName = "bank.account.deposited"

// streamType is the stream type of store-level workloads.
const streamType = "bank.account"

// sampleBatch returns n store-level events.
func sampleBatch(n int) []runtime.EventData {
	data := samplePayload()
	evs := make([]runtime.EventData, n)
	for i := range evs {
		evs[i] = runtime.EventData{Name: eventName, Schema: 1, Data: data}
	}
	return evs
}
