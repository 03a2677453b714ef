// Package torture is the crash campaign behind cmd/cqrstorture: a child
// process appends and executes commands from many goroutines against a
// durable store, reporting every acknowledged operation on stdout; the
// parent kills it with SIGKILL at random moments, restarts it, and after
// every round checks that everything acknowledged survived exactly once and
// that nothing half-written did (see docs/reliability.md).
package torture

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// Backends a campaign can run against.
const (
	Pebble   = "pebble"
	Postgres = "postgres"
)

// Target names one store: a Pebble directory or a PostgreSQL schema.
type Target struct {
	// Backend is Pebble or Postgres.
	Backend string `json:"backend"`
	// Dir is the Pebble store directory.
	Dir string `json:"dir,omitempty"`
	// DSN and Schema locate the PostgreSQL store.
	DSN    string `json:"dsn,omitempty"`
	Schema string `json:"schema,omitempty"`
}

func (t Target) String() string {
	if t.Backend == Postgres {
		return "postgres schema " + t.Schema
	}
	return "pebble " + t.Dir
}

// open opens the target's store with durable (synced) appends.
func open(ctx context.Context, t Target) (runtime.Store, error) {
	switch t.Backend {
	case Pebble:
		s, err := pebble.Open(t.Dir)
		if err != nil {
			return nil, err
		}
		return s, nil
	case Postgres:
		s, err := postgres.Open(ctx, t.dsn(), postgres.WithSchema(t.Schema), postgres.WithMaxConns(64))
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("torture: unknown backend %q: %w", t.Backend, errors.ErrUnsupported)
}

// childApp is the application_name of the child's PostgreSQL sessions.
const childApp = "cqrstorture-child"

// dsn returns the DSN with the child's application name, so that the
// parent can find the sessions a killed child left on the server.
func (t Target) dsn() string {
	if strings.Contains(t.DSN, "://") {
		u, err := url.Parse(t.DSN)
		if err != nil {
			return t.DSN // postgres.Open reports it
		}
		q := u.Query()
		q.Set("application_name", childApp)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return t.DSN + " application_name=" + childApp
}

// settle waits until the server has ended every session of a killed
// child. A SIGKILLed client does not stop the server: a backend that had
// received COMMIT goes on and commits, after the client is gone. The
// verifier must look at the store only once that can no longer happen,
// or it would race with the dead child's last commits. Sessions still
// there after a while are terminated (their transactions roll back, like
// a crash of the server side of the session would).
func settle(ctx context.Context, t Target) error {
	if t.Backend != Postgres {
		return nil
	}
	conn, err := pgx.Connect(ctx, t.DSN)
	if err != nil {
		return fmt.Errorf("torture: connecting to settle the killed child's sessions: %w", err)
	}
	defer conn.Close(context.Background())
	const q = `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`
	for i := 0; ; i++ {
		var n int
		if err := conn.QueryRow(ctx, q, childApp).Scan(&n); err != nil {
			return fmt.Errorf("torture: counting the killed child's sessions: %w", err)
		}
		if n == 0 {
			return nil
		}
		if i == 500 { // 5 s
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, childApp); err != nil {
				return fmt.Errorf("torture: terminating the killed child's sessions: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
