package torture

import (
	"context"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BalancesProjectionName is the name (and lease) of the replicas' read
// model.
const BalancesProjectionName = "torture.bank-balances"

// pgBalances is the bank's balances read model kept in PostgreSQL, next to
// the store's tables, the way a service run as N replicas keeps its read
// side: one row per account and one row holding the position, committed
// together (exactly-once), each transaction fenced by the projection's
// lease (postgres.Store.Fence), so a replica that lost its lease commits
// nothing. Split into parts partitions (projection.Partitions), it keeps one
// position per partition.
type pgBalances struct {
	store    *postgres.Store
	pool     *pgxpool.Pool
	parts    int
	accounts string // quoted table names
	position string
	applied  string
}

func newPGBalances(store *postgres.Store, pool *pgxpool.Pool, schema string, parts int) *pgBalances {
	return &pgBalances{store: store, pool: pool, parts: max(parts, 1),
		accounts: pgx.Identifier{schema, "rm_accounts"}.Sanitize(),
		position: pgx.Identifier{schema, "rm_position"}.Sanitize(),
		applied:  pgx.Identifier{schema, "rm_applied"}.Sanitize()}
}

// create makes the read model's tables (idempotent).
func (b *pgBalances) create(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+b.accounts+` (
	account text PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL, closed bool NOT NULL);
CREATE TABLE IF NOT EXISTS `+b.position+` (id int PRIMARY KEY, position bigint NOT NULL);
CREATE TABLE IF NOT EXISTS `+b.applied+` (position bigint PRIMARY KEY, part int NOT NULL, holder text NOT NULL, epoch bigint NOT NULL)`)
	if err != nil {
		return err
	}
	_, err = b.pool.Exec(ctx, `INSERT INTO `+b.position+` SELECT i, 0 FROM generate_series(0, $1::int - 1) i ON CONFLICT DO NOTHING`, b.parts)
	return err
}

// part is the partition Handle, Reset and Position were called for (0
// when the projection is not split).
func part(ctx context.Context) int {
	p, _ := projection.PartitionFrom(ctx)
	return p.Index
}

// options are the group options the model is added with.
func (b *pgBalances) options() []projection.Option {
	return []projection.Option{projection.Partitions(b.parts)}
}

// leaseName is the name of the lease of partition 0 (of the model when
// it is not split).
func (b *pgBalances) leaseName() string {
	if b.parts <= 1 {
		return BalancesProjectionName
	}
	return projection.PartitionName(BalancesProjectionName, projection.Partition{Index: 0, Count: b.parts})
}

// Projection describes the read model to the runtime.
func (b *pgBalances) Projection() projection.Projection {
	return projection.Projection{
		Name:     BalancesProjectionName,
		Events:   account.AccountEvents().Names(),
		Handle:   b.handle,
		Reset:    b.reset,
		Position: b.pos,
	}
}

// change is one event's effect on its account row.
type change struct {
	open   *account.Opened
	amount int64
	closed bool
}

func decodeChange(rec runtime.Record) (change, bool, error) {
	if rec.Stream.Type != account.AccountStreamType {
		return change{}, false, nil
	}
	wrap := func(err error) error {
		return &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: rec.Name, Err: err}
	}
	e, err := account.AccountEvents().Decode(rec.Name, rec.Schema, rec.Data)
	if err != nil {
		return change{}, false, wrap(err)
	}
	switch e := e.(type) {
	case account.Opened:
		return change{open: &e}, true, nil
	case account.Deposited:
		return change{amount: e.Amount}, true, nil
	case account.Withdrawn:
		return change{amount: -e.Amount}, true, nil
	case account.AccountClosed:
		return change{closed: true}, true, nil
	}
	return change{}, false, nil
}

// handle applies one event and moves the position in one fenced
// transaction; a position at or below the committed one was applied.
func (b *pgBalances) handle(ctx context.Context, rec runtime.Record) error {
	c, ok, err := decodeChange(rec)
	if err != nil || !ok {
		return err
	}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if err := b.store.Fence(ctx, tx); err != nil {
			return err
		}
		var pos int64
		if err := tx.QueryRow(ctx, `SELECT position FROM `+b.position+` WHERE id = $1 FOR UPDATE`, part(ctx)).Scan(&pos); err != nil {
			return err
		}
		if uint64(pos) >= rec.Position {
			return nil
		}
		var err error
		switch {
		case c.open != nil:
			_, err = tx.Exec(ctx, `INSERT INTO `+b.accounts+` VALUES ($1, $2, 0, false)`, rec.Stream.ID, c.open.Owner)
		case c.closed:
			_, err = tx.Exec(ctx, `UPDATE `+b.accounts+` SET closed = true WHERE account = $1`, rec.Stream.ID)
		default:
			_, err = tx.Exec(ctx, `UPDATE `+b.accounts+` SET balance = balance + $2 WHERE account = $1`, rec.Stream.ID, c.amount)
		}
		if err != nil {
			return err
		}
		// Who applied it, under which epoch: the campaign checks that
		// epochs never go down along the log (no deposed holder wrote
		// after its successor).
		l, _ := lease.FromContext(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO `+b.applied+` VALUES ($1, $2, $3, $4)`, int64(rec.Position), part(ctx), l.Holder, int64(l.Epoch)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+b.position+` SET position = $1 WHERE id = $2`, int64(rec.Position), part(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("balances read model at position %d: %w", rec.Position, postgres.MarkUnavailable(err))
	}
	return nil
}

// reset empties the partition's accounts (all of them when not split).
func (b *pgBalances) reset(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if err := b.store.Fence(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT account FROM `+b.accounts)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		var mine []string
		for _, id := range ids {
			if projection.PartitionOf(runtime.StreamID{Type: account.AccountStreamType, ID: id}, b.parts) == part(ctx) {
				mine = append(mine, id)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+b.accounts+` WHERE account = ANY($1)`, mine); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+b.applied+` WHERE part = $1`, part(ctx)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+b.position+` SET position = 0 WHERE id = $1`, part(ctx))
		return err
	})
	return postgres.MarkUnavailable(err)
}

func (b *pgBalances) pos(ctx context.Context) (uint64, error) {
	var p int64
	err := b.pool.QueryRow(ctx, `SELECT position FROM `+b.position+` WHERE id = $1`, part(ctx)).Scan(&p)
	return uint64(p), postgres.MarkUnavailable(err)
}

// positions returns the committed position of every partition.
func (b *pgBalances) positions(ctx context.Context) ([]uint64, error) {
	rows, err := b.pool.Query(ctx, `SELECT position FROM `+b.position+` ORDER BY id`)
	if err != nil {
		return nil, err
	}
	ps, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = uint64(p)
	}
	return out, err
}

// ownerRow is one owner's line of the read model.
type ownerRow struct {
	Owner        string
	Balance      int64
	Open, Closed int
}

// byOwner reads the read model as readmodel.Balances.ByOwner reports it.
func (b *pgBalances) byOwner(ctx context.Context) ([]ownerRow, error) {
	rows, err := b.pool.Query(ctx, `SELECT owner, sum(balance)::bigint, count(*) FILTER (WHERE NOT closed), count(*) FILTER (WHERE closed)
FROM `+b.accounts+` GROUP BY owner ORDER BY owner COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ownerRow, error) {
		var o ownerRow
		err := r.Scan(&o.Owner, &o.Balance, &o.Open, &o.Closed)
		return o, err
	})
}

// epochCheck reads who applied each event and reports the first place
// where the epoch of a partition's lease went down along the log (a
// deposed holder's write after its successor's), how many events were
// applied and by how many holders.
func (b *pgBalances) epochCheck(ctx context.Context) (applied, holders int, problem string, err error) {
	rows, err := b.pool.Query(ctx, `SELECT position, part, holder, epoch FROM `+b.applied+` ORDER BY position`)
	if err != nil {
		return 0, 0, "", err
	}
	defer rows.Close()
	seen := map[string]bool{}
	type tenure struct {
		epoch  int64
		holder string
	}
	last := map[int]tenure{}
	for rows.Next() {
		var pos, epoch int64
		var p int
		var holder string
		if err := rows.Scan(&pos, &p, &holder, &epoch); err != nil {
			return 0, 0, "", err
		}
		if l := last[p]; epoch < l.epoch && problem == "" {
			problem = fmt.Sprintf("position %d of partition %d applied by %s at epoch %d after %s at epoch %d", pos, p, holder, epoch, l.holder, l.epoch)
		}
		last[p] = tenure{epoch, holder}
		seen[holder] = true
		applied++
	}
	return applied, len(seen), problem, rows.Err()
}
