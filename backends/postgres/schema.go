package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the table layout this code writes. Open
// migrates older schemas up to it and refuses newer ones.
const SchemaVersion = 1

// lockClass is the first key of the advisory lock that serialises
// migrations; the second is hashtext(schema name), so stores in distinct
// schemas do not wait for each other.
const lockClass = 0x63717273 // "cqrs"

// SchemaVersionError reports a schema written by a newer version of this
// package: Open refuses it rather than misread it.
type SchemaVersionError struct {
	// Schema is the PostgreSQL schema (namespace) holding the tables.
	Schema string
	// Found is the version recorded in the schema's version table.
	Found int
	// Supported is the newest version this code understands (SchemaVersion).
	Supported int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("cqrsgen: postgres: schema %q is at version %d, newer than version %d that this code supports: upgrade cqrsgen",
		e.Schema, e.Found, e.Supported)
}

// migrations[i] takes the schema from version i to i+1. {{S}} is replaced
// by the quoted schema name.
var migrations = []string{
	`
CREATE TABLE {{S}}.log_head (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL CHECK (position >= 0)
);
INSERT INTO {{S}}.log_head (id, position) VALUES (1, 0);

CREATE TABLE {{S}}.streams (
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL CHECK (version >= 0),
	PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE {{S}}.events (
	position    bigint PRIMARY KEY,
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	name        bytea  NOT NULL,
	schema      bigint NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL,
	metadata    bytea,
	data        bytea  NOT NULL,
	UNIQUE (stream_type, stream_id, version)
);

CREATE TABLE {{S}}.snapshots (
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	schema      bytea  NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL,
	data        bytea  NOT NULL,
	PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE {{S}}.checkpoints (
	name     bytea  PRIMARY KEY,
	position bigint NOT NULL
);

CREATE TABLE {{S}}.idempotency (
	key         bytea  PRIMARY KEY,
	stream_type bytea  NOT NULL,
	stream_id   bytea  NOT NULL,
	version     bigint NOT NULL,
	position    bigint NOT NULL,
	time_s      bigint NOT NULL,
	time_ns     int    NOT NULL
);
`,
}

// migrate creates or upgrades the schema inside one transaction holding an
// advisory lock, so that concurrent Opens (other processes, other
// machines) apply each migration exactly once.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) (int, error) {
	s := pgx.Identifier{schema}.Sanitize()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(lockClass), schema); err != nil {
		return 0, fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
		return 0, fmt.Errorf("creating schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.schema_version (
	version    int PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return 0, fmt.Errorf("creating the version table: %w", err)
	}
	var found int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s+`.schema_version`).Scan(&found); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	if found > SchemaVersion {
		return found, &SchemaVersionError{Schema: schema, Found: found, Supported: SchemaVersion}
	}
	for v := found; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{{S}}", s)); err != nil {
			return found, fmt.Errorf("migrating to version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.schema_version (version) VALUES ($1)`, v+1); err != nil {
			return found, fmt.Errorf("recording version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return found, err
	}
	return SchemaVersion, nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
