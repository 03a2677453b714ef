// Package lease is the contract behind running one projection or saga in
// many processes at once: a store shared by several processes (PostgreSQL)
// implements Leaser, and the projection and saga runners take a fenced
// Lease per projection and saga, so that one process is active for each
// while the others stand by. Read models kept in the store's database
// fence their own writes with the Lease the runner passes in the context
// (FromContext).
package lease

import (
	"context"
	"errors"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/wrap"
)

// Lease is a time-limited, fenced claim on a name (a projection, a saga)
// held by one process at a time. Epoch grows each time the lease passes to
// another holder, so a write conditioned on (Name, Holder, Epoch) fails
// once the lease has moved on, even if its old holder does not know yet.
type Lease struct {
	// Name is what the lease is for: a projection's name, or
	// saga.ProjectionName of a saga.
	Name string
	// Holder identifies the process (runner) holding it.
	Holder string
	// Epoch is the fencing token: it increases each time the lease changes
	// holder. 0 means no lease.
	Epoch uint64
	// Expires is when the lease ends unless renewed, on the store's clock.
	Expires time.Time
}

// Leaser is the optional store capability behind running one projection or
// saga in many processes: a store shared by several processes (PostgreSQL)
// implements it, and projection.Group, projection.Run and saga.Run then take a
// lease per projection (and per saga) so that exactly one process is active
// for each at a time while the others stand by. Stores that only one
// process can open (Pebble, memory) do not implement it; the runtime then
// runs every projection it is given, as before. The runtime finds a Leaser
// through wrappers that have an Unwrap() Store method (instrument.Store).
//
// Times are the store's: expiry is decided by one clock, whatever the
// clocks of the processes.
type Leaser interface {
	// AcquireLease takes lease name for holder for ttl when it is free,
	// expired or released, with a new, larger epoch; when holder already
	// holds it, it extends it by ttl and keeps the epoch. When another
	// holder's lease stands, it returns that lease and an error matching
	// ErrHeld.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease ends l at once if its holder still holds it at its
	// epoch, so another process can take it without waiting for expiry;
	// otherwise it does nothing and returns nil.
	ReleaseLease(ctx context.Context, l Lease) error
	// SaveCheckpointLeased is SaveCheckpoint conditioned on l, atomically:
	// it writes only while l.Holder holds lease l.Name at l.Epoch, and
	// fails with an error matching ErrLost otherwise.
	SaveCheckpointLeased(ctx context.Context, l Lease, name string, position uint64) error
	// Leases returns every lease the store knows, ordered by name.
	Leases(ctx context.Context) ([]Lease, error)
}

// Of returns the Leaser behind store: store itself, or the store a
// wrapper's Unwrap method returns, recursively. ok is false when the store
// runs no leases.
func Of(store runtime.Store) (l Leaser, ok bool) {
	l = wrap.Find(store, func(s runtime.Store) (Leaser, bool) { l, ok := s.(Leaser); return l, ok })
	return l, l != nil
}

// Lease errors.
var (
	// ErrHeld reports that another holder's lease stands.
	ErrHeld = errors.New("cqrsgen: lease held by another process")
	// ErrLost reports a fenced write refused because the writer no
	// longer holds the lease at its epoch: another process has taken over.
	ErrLost = errors.New("cqrsgen: lease lost")
)

type leaseKey struct{}

// NewContext returns ctx carrying l. The projection runner passes the lease
// it holds to Handle, Reset and Position this way, so that a read model
// kept in the store's database can condition its writes on it (for
// PostgreSQL: postgres.Store.Fence in the read model's transaction).
func NewContext(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// FromContext returns the lease ctx carries, ok=false when it carries none
// (the projection runs unleased: single-process store or projection.WithoutLease).
func FromContext(ctx context.Context) (Lease, bool) {
	l, ok := ctx.Value(leaseKey{}).(Lease)
	return l, ok
}

// Lease defaults.
const (
	// DefaultTTL is how long a lease lasts without renewal. The holder
	// renews it every third of it; a standby retries every fifth, so a
	// dead holder's projections are taken over within TTL + TTL/5 (6 s).
	DefaultTTL = 5 * time.Second
	// MinTTL is the shortest TTL projection.LeaseTTL accepts.
	MinTTL = 100 * time.Millisecond
)

// Change says what happened to a lease.
type Change string

// Lease changes reported to projection.Metrics.
const (
	// Acquired: this process took the lease (a new epoch).
	Acquired Change = "acquired"
	// Lost: this process lost the lease without giving it up (another
	// process took it, or it could not be renewed in time).
	Lost Change = "lost"
	// Released: this process gave the lease up (stop, failure).
	Released Change = "released"
)

// Event reports a change of a lease held by this process.
type Event struct {
	Lease  Lease
	Change Change
}
