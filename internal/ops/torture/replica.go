package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReplicaSpec is what the parent of the replicas campaign tells one
// replica process.
type ReplicaSpec struct {
	DSN    string `json:"dsn"`
	Schema string `json:"schema"`
	// Name is the replica's lease holder name, unique per process started.
	Name string `json:"name"`
	// TTL is the lease TTL.
	TTL time.Duration `json:"ttl"`
	// Partitions splits the read model (projection.Partitions).
	Partitions int `json:"partitions"`
}

// Encode returns the spec as the argument of the replica flag.
func (r ReplicaSpec) Encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// replicaClock is the saga clock of every replica: it never moves, so the
// transfers' deposit deadline never fires and each transfer's outcome
// depends only on the accounts, not on how long the kills held it up.
var replicaClock = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// ReplicaMain runs one replica of the bank's read side until SIGTERM or
// SIGINT and returns the exit code: the balances read model (in
// PostgreSQL, fenced) in a ProjectionGroup and the transfer saga, both
// leased, as every replica of a service would run them. It writes
// "ready" once started, and "step <account> <command> <reference>" for
// each saga step its runner executed (one write per line).
func ReplicaMain(spec string) int {
	var rs ReplicaSpec
	if err := json.Unmarshal([]byte(spec), &rs); err != nil || rs.Name == "" {
		fmt.Fprintf(os.Stderr, "torture replica: bad spec %q: %v\n", spec, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runReplica(ctx, rs, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "torture replica %s: %v\n", rs.Name, err)
		return 1
	}
	return 0
}

func runReplica(ctx context.Context, rs ReplicaSpec, stdout io.Writer) error {
	store, err := postgres.Open(ctx, rs.DSN, postgres.WithSchema(rs.Schema), postgres.WithMaxConns(8))
	if err != nil {
		return err
	}
	defer store.Close()
	pool, err := pgxpool.New(ctx, rs.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	out := &lineWriter{w: stdout}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	model := newPGBalances(store, pool, rs.Schema, rs.Partitions)
	lease := []projection.Option{projection.LeaseTTL(rs.TTL), projection.LeaseHolder(rs.Name)}
	group := projection.NewGroup(store, lease...)
	if err := group.Add(model.Projection(), model.options()...); err != nil {
		return err
	}
	accounts := account.NewAccountRepository(store)
	transferSaga := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})
	logged := *transferSaga
	logged.Execute = func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
		v, err := transferSaga.Execute(ctx, id, c, opts...)
		if err == nil {
			var ref string
			switch c := c.(type) {
			case account.Deposit:
				ref = c.Reference
			case account.Withdraw:
				ref = c.Reference
			}
			_ = out.printf("step %s %T %q\n", id, c, ref)
		}
		return v, err
	}
	groupErr := make(chan error, 1)
	sagaErr := make(chan error, 1)
	go func() { groupErr <- group.Run(ctx) }()
	go func() {
		sagaErr <- saga.Run(ctx, store, &logged, saga.WithClock(saga.NewManualClock(replicaClock)),
			saga.Projection(lease...))
	}()
	if err := out.printf("ready\n"); err != nil {
		return err
	}
	var first error
	for range 2 {
		var err error
		select {
		case err = <-groupErr:
			if err != nil {
				err = fmt.Errorf("projection group: %w", err)
			}
		case err = <-sagaErr:
			if err != nil {
				err = fmt.Errorf("saga runner: %w", err)
			}
		}
		if err != nil && first == nil {
			first = err
			cancel() // the other ends too
		}
	}
	return first
}
