package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/jackc/pgx/v5"
)

// Leases: the store implements lease.Leaser with one table, {schema}.leases,
// one row per lease (a projection or a saga):
//
//	name bytea PRIMARY KEY, holder text, epoch bigint, expires_at timestamptz
//
// Taking a lease is one upsert that succeeds only when the row is free
// (expired, released) or already the caller's; it bumps the epoch when the
// holder changes. Expiry is decided by the server's clock alone. Fencing: a
// checkpoint saved under a lease (SaveCheckpointLeased), and any write of a
// read model whose transaction calls Fence, first locks the lease row FOR
// SHARE and checks holder and epoch, so a deposed holder's write changes
// nothing, and a takeover waits for a fenced write in flight to commit.
//
// The table is created on first use (CREATE TABLE IF NOT EXISTS under the
// migration lock), outside the numbered schema migrations: it holds only
// coordination state that can be recreated empty at any time.

var _ lease.Leaser = (*Store)(nil)

const leaseDDL = `CREATE TABLE IF NOT EXISTS {{S}}.leases (
	name        bytea       PRIMARY KEY,
	holder      text        NOT NULL,
	epoch       bigint      NOT NULL CHECK (epoch > 0),
	expires_at  timestamptz NOT NULL,
	acquired_at timestamptz NOT NULL
)`

// leaseState is the store's lease machinery: the statements, and whether
// the table is known to exist.
type leaseState struct {
	mu    sync.Mutex
	ready bool
	q     leaseSQL
}

// leaseSQL holds the lease statements with the schema filled in.
type leaseSQL struct {
	acquire, current, release, ckptSave, fence, list string
}

func newLeaseSQL(schema string) leaseSQL {
	r := strings.NewReplacer("{{S}}", schema)
	return leaseSQL{
		// $3 is the TTL in microseconds.
		acquire: r.Replace(`INSERT INTO {{S}}.leases AS l (name, holder, epoch, expires_at, acquired_at)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond', clock_timestamp())
ON CONFLICT (name) DO UPDATE SET
	epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END,
	acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END,
	holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp()
RETURNING holder, epoch, expires_at`),
		current: r.Replace(`SELECT holder, epoch, expires_at FROM {{S}}.leases WHERE name = $1`),
		// A released lease keeps its epoch and loses its holder, so the
		// next holder, whoever it is, gets a new epoch.
		release: r.Replace(`UPDATE {{S}}.leases SET holder = '', expires_at = clock_timestamp()
WHERE name = $1 AND holder = $2 AND epoch = $3`),
		ckptSave: r.Replace(`WITH l AS (
	SELECT 1 FROM {{S}}.leases WHERE name = $3 AND holder = $4 AND epoch = $5 FOR SHARE
)
INSERT INTO {{S}}.checkpoints (name, position) SELECT $1, $2 FROM l
ON CONFLICT (name) DO UPDATE SET position = excluded.position
RETURNING 1`),
		fence: r.Replace(`SELECT 1 FROM {{S}}.leases WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE`),
		list:  r.Replace(`SELECT name, holder, epoch, expires_at FROM {{S}}.leases ORDER BY name`),
	}
}

// leaseTable creates the lease table once per store; a failure is retried
// by the next call.
func (s *Store) leaseTable(ctx context.Context) error {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if s.leases.ready {
		return nil
	}
	schema, err := s.createOnFirstUse(ctx, leaseDDL)
	if err != nil {
		return err
	}
	s.leases.q, s.leases.ready = newLeaseSQL(schema), true
	return nil
}

// leaseBegin is begin plus the lease table.
func (s *Store) leaseBegin(ctx context.Context, op string) (func(), error) {
	leave, err := s.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := s.leaseTable(ctx); err != nil {
		leave()
		return nil, s.fail(ctx, op, fmt.Errorf("creating the lease table: %w", err))
	}
	return leave, nil
}

func validLeaseName(name, holder string) error {
	if err := runtime.ValidateKey("lease name", name); err != nil {
		return err
	}
	if holder == "" {
		return fmt.Errorf("%w: empty lease holder", runtime.ErrInvalid)
	}
	return nil
}

// AcquireLease takes lease name for holder for ttl, or renews it when
// holder holds it (see lease.Leaser). When another holder's lease
// stands it returns that lease and an error matching lease.ErrHeld.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (lease.Lease, error) {
	op := fmt.Sprintf("acquire lease %q", name)
	if err := validLeaseName(name, holder); err != nil {
		return lease.Lease{}, fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	if ttl <= 0 {
		return lease.Lease{}, fmt.Errorf("cqrsgen: postgres: %s: %w: TTL %v", op, runtime.ErrInvalid, ttl)
	}
	leave, err := s.leaseBegin(ctx, op)
	if err != nil {
		return lease.Lease{}, err
	}
	defer leave()
	l := lease.Lease{Name: name}
	var epoch int64
	err = s.pool.QueryRow(ctx, s.leases.q.acquire, []byte(name), holder, ttl.Microseconds()).Scan(&l.Holder, &epoch, &l.Expires)
	if isNoRows(err) {
		err = s.pool.QueryRow(ctx, s.leases.q.current, []byte(name)).Scan(&l.Holder, &epoch, &l.Expires)
		if err == nil {
			l.Epoch = uint64(epoch)
			return l, fmt.Errorf("cqrsgen: postgres: %s: %w: held by %s (epoch %d) until %s",
				op, lease.ErrHeld, l.Holder, l.Epoch, l.Expires.UTC().Format(time.RFC3339Nano))
		}
		if isNoRows(err) { // released and removed meanwhile: try again later
			return l, fmt.Errorf("cqrsgen: postgres: %s: %w", op, lease.ErrHeld)
		}
	}
	if err != nil {
		return lease.Lease{}, s.fail(ctx, op, err)
	}
	l.Epoch = uint64(epoch)
	return l, nil
}

// ReleaseLease ends l at once if its holder still holds it at its epoch.
func (s *Store) ReleaseLease(ctx context.Context, l lease.Lease) error {
	op := fmt.Sprintf("release lease %q", l.Name)
	if err := validLeaseName(l.Name, l.Holder); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	leave, err := s.leaseBegin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	if _, err := s.pool.Exec(ctx, s.leases.q.release, []byte(l.Name), l.Holder, int64(l.Epoch)); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// SaveCheckpointLeased saves a checkpoint only while l is held at its
// epoch, atomically with that check; otherwise it fails with an error
// matching lease.ErrLost.
func (s *Store) SaveCheckpointLeased(ctx context.Context, l lease.Lease, name string, position uint64) error {
	op := fmt.Sprintf("save checkpoint %q under lease %q epoch %d", name, l.Name, l.Epoch)
	if err := runtime.ValidateKey("checkpoint name", name); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	if err := validLeaseName(l.Name, l.Holder); err != nil {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, err)
	}
	leave, err := s.leaseBegin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	var one int
	err = s.pool.QueryRow(ctx, s.leases.q.ckptSave, []byte(name), int64(position), []byte(l.Name), l.Holder, int64(l.Epoch)).Scan(&one)
	if isNoRows(err) {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, lease.ErrLost)
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// Leases returns every lease, ordered by name. A released lease has an
// empty Holder.
func (s *Store) Leases(ctx context.Context) ([]lease.Lease, error) {
	leave, err := s.leaseBegin(ctx, "list leases")
	if err != nil {
		return nil, err
	}
	defer leave()
	rows, err := s.pool.Query(ctx, s.leases.q.list)
	if err != nil {
		return nil, s.fail(ctx, "list leases", err)
	}
	var out []lease.Lease
	for rows.Next() {
		var (
			name  []byte
			l     lease.Lease
			epoch int64
		)
		if err := rows.Scan(&name, &l.Holder, &epoch, &l.Expires); err != nil {
			rows.Close()
			return nil, s.fail(ctx, "list leases", err)
		}
		l.Name, l.Epoch = string(name), uint64(epoch)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "list leases", err)
	}
	return out, nil
}

// Fence checks, inside the caller's transaction tx on this store's
// database, that the lease carried by ctx (lease.FromContext: the lease a
// projection runner holds while it calls Handle, Reset and Position) is
// still held at its epoch, and locks it until tx ends, so that no other
// process can take it over before tx commits. A read model kept in the
// same database calls it in each write transaction, before committing its
// rows and its position: a runner that lost its lease then commits
// nothing, and Fence's error (matching lease.ErrLost) makes the
// runner stand by. Without a lease in ctx (the projection runs unleased)
// Fence does nothing.
func (s *Store) Fence(ctx context.Context, tx pgx.Tx) error {
	l, ok := lease.FromContext(ctx)
	if !ok {
		return nil
	}
	op := fmt.Sprintf("fence on lease %q epoch %d", l.Name, l.Epoch)
	leave, err := s.leaseBegin(ctx, op)
	if err != nil {
		return err
	}
	defer leave()
	var one int
	err = tx.QueryRow(ctx, s.leases.q.fence, []byte(l.Name), l.Holder, int64(l.Epoch)).Scan(&one)
	if isNoRows(err) {
		return fmt.Errorf("cqrsgen: postgres: %s: %w", op, lease.ErrLost)
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// createOnFirstUse runs ddl (CREATE … IF NOT EXISTS statements, the schema
// written {{S}}) under the migration lock, for the tables a capability
// creates when first used (leases, keys), and returns the quoted schema.
// The lock matters: concurrent CREATE TABLE IF NOT EXISTS can fail on the
// catalog's unique indexes.
func (s *Store) createOnFirstUse(ctx context.Context, ddl string) (string, error) {
	schema := pgx.Identifier{s.opt.schema}.Sanitize()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(lockClass), s.opt.schema); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, strings.ReplaceAll(ddl, "{{S}}", schema)); err != nil {
		return "", err
	}
	return schema, tx.Commit(ctx)
}
