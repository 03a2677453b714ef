package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Lease is a time-limited, fenced claim on a name (a projection, a saga)
// held by one process at a time. Epoch grows each time the lease passes to
// another holder, so a write conditioned on (Name, Holder, Epoch) fails
// once the lease has moved on, even if its old holder does not know yet.
type Lease struct {
	// Name is what the lease is for: a projection's name, or
	// SagaProjectionName of a saga.
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
// implements it, and ProjectionGroup, RunProjection and RunSaga then take a
// lease per projection (and per saga) so that exactly one process is active
// for each at a time while the others stand by. Stores that only one
// process can open (Pebble, memory) do not implement it; the runtime then
// runs every projection it is given, as before. The runtime finds a Leaser
// through wrappers that have an Unwrap() Store method (InstrumentedStore).
//
// Times are the store's: expiry is decided by one clock, whatever the
// clocks of the processes.
type Leaser interface {
	// AcquireLease takes lease name for holder for ttl when it is free,
	// expired or released, with a new, larger epoch; when holder already
	// holds it, it extends it by ttl and keeps the epoch. When another
	// holder's lease stands, it returns that lease and an error matching
	// ErrLeaseHeld.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease ends l at once if its holder still holds it at its
	// epoch, so another process can take it without waiting for expiry;
	// otherwise it does nothing and returns nil.
	ReleaseLease(ctx context.Context, l Lease) error
	// SaveCheckpointLeased is SaveCheckpoint conditioned on l, atomically:
	// it writes only while l.Holder holds lease l.Name at l.Epoch, and
	// fails with an error matching ErrLeaseLost otherwise.
	SaveCheckpointLeased(ctx context.Context, l Lease, name string, position uint64) error
	// Leases returns every lease the store knows, ordered by name.
	Leases(ctx context.Context) ([]Lease, error)
}

// LeaserOf returns the Leaser behind store: store itself, or the store a
// wrapper's Unwrap method returns, recursively. ok is false when the store
// runs no leases.
func LeaserOf(store Store) (l Leaser, ok bool) {
	l = behind(store, func(s Store) (Leaser, bool) { l, ok := s.(Leaser); return l, ok })
	return l, l != nil
}

// behind walks store and the stores its wrappers' Unwrap methods return,
// recursively, and returns the first value find reports, or the zero value.
func behind[T any](store Store, find func(Store) (T, bool)) T {
	for store != nil {
		if v, ok := find(store); ok {
			return v
		}
		u, ok := store.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		store = u.Unwrap()
	}
	var zero T
	return zero
}

// instrumented finds, behind store's wrappers, an InstrumentedStore for
// which pick reports a value.
func instrumented[T any](store Store, pick func(*InstrumentedStore) (T, bool)) T {
	return behind(store, func(s Store) (T, bool) {
		if i, ok := s.(*InstrumentedStore); ok {
			return pick(i)
		}
		var zero T
		return zero, false
	})
}

// Lease errors.
var (
	// ErrLeaseHeld reports that another holder's lease stands.
	ErrLeaseHeld = errors.New("cqrsgen: lease held by another process")
	// ErrLeaseLost reports a fenced write refused because the writer no
	// longer holds the lease at its epoch: another process has taken over.
	ErrLeaseLost = errors.New("cqrsgen: lease lost")
)

type leaseKey struct{}

// WithLease returns ctx carrying l. The projection runner passes the lease
// it holds to Handle, Reset and Position this way, so that a read model
// kept in the store's database can condition its writes on it (for
// PostgreSQL: postgres.Store.Fence in the read model's transaction).
func WithLease(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// LeaseFrom returns the lease ctx carries, ok=false when it carries none
// (the projection runs unleased: single-process store or WithoutLease).
func LeaseFrom(ctx context.Context) (Lease, bool) {
	l, ok := ctx.Value(leaseKey{}).(Lease)
	return l, ok
}

// Lease defaults.
const (
	// DefaultLeaseTTL is how long a lease lasts without renewal. The holder
	// renews it every third of it; a standby retries every fifth, so a
	// dead holder's projections are taken over within TTL + TTL/5 (6 s).
	DefaultLeaseTTL = 5 * time.Second
	// MinLeaseTTL is the shortest TTL LeaseTTL accepts.
	MinLeaseTTL = 100 * time.Millisecond
)

// LeaseTTL sets the lease TTL of projections (and, through SagaProjection,
// of sagas) on a store that implements Leaser (default DefaultLeaseTTL,
// at least MinLeaseTTL). Failover after the holder dies takes at most
// ttl + ttl/5; a shorter TTL means faster failover but more renewals (one
// small write per projection every ttl/3) and a greater chance that a long
// pause (GC, a stalled network) makes a healthy holder lose its lease.
func LeaseTTL(ttl time.Duration) ProjectionOption {
	return func(c *projectionConfig) { c.leaseTTL = max(ttl, MinLeaseTTL) }
}

// LeaseHolder sets the holder name this process's runners use in leases
// (default: host name, process id and a random suffix, unique per
// process). Status and the store's lease table show it.
func LeaseHolder(name string) ProjectionOption {
	return func(c *projectionConfig) {
		if name != "" {
			c.leaseHolder = name
		}
	}
}

// WithoutLease runs the projection in every process even when the store
// implements Leaser: for read models kept in process memory (each process
// has its own copy and must feed it). Its checkpoint must then be its own
// (exactly-once, Projection.Position), or distinct per process.
func WithoutLease() ProjectionOption {
	return func(c *projectionConfig) { c.noLease = true }
}

var processHolder = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
})

// LeaseChange says what happened to a lease.
type LeaseChange string

// Lease changes reported to ReadSideMetrics.
const (
	// LeaseAcquired: this process took the lease (a new epoch).
	LeaseAcquired LeaseChange = "acquired"
	// LeaseLost: this process lost the lease without giving it up (another
	// process took it, or it could not be renewed in time).
	LeaseLost LeaseChange = "lost"
	// LeaseReleased: this process gave the lease up (stop, failure).
	LeaseReleased LeaseChange = "released"
)

// LeaseEvent reports a change of a lease held by this process.
type LeaseEvent struct {
	Lease  Lease
	Change LeaseChange
}

// ProjectionProgress reports where a projection (or saga) runner is.
type ProjectionProgress struct {
	// Name is the projection's name.
	Name string
	// Position is the last position processed, Head the store's head as
	// last seen, Lag = Head - Position.
	Position, Head, Lag uint64
	// State is the runner's state.
	State ProjectionState
	// EventTime is when the event at Position was appended (zero before
	// this runner processed any). While Lag > 0, the time since EventTime
	// bounds from above how long the oldest unprocessed event has waited.
	EventTime time.Time
}

// ReadSideMetrics is an optional extension of Metrics for the read side:
// when the Metrics given to Instrument implements it, the projection and
// saga runners over that instrumented store report lease changes and
// progress to it. metrics/prometheus implements it.
type ReadSideMetrics interface {
	// ObserveLease is called when this process acquires, loses or releases
	// a lease.
	ObserveLease(e LeaseEvent)
	// ObserveProjection is called when a runner's state changes, after
	// each checkpoint and each time it catches up.
	ObserveProjection(p ProjectionProgress)
}

// readSideMetricsOf finds ReadSideMetrics behind store's wrappers.
func readSideMetricsOf(store Store) ReadSideMetrics {
	return instrumented(store, func(i *InstrumentedStore) (ReadSideMetrics, bool) {
		m, ok := i.m.(ReadSideMetrics)
		return m, ok
	})
}

// leaseSession is one tenure of a lease: acquired, renewed in the
// background, and ended by release or loss. ctx is cancelled when the
// lease is lost or released.
type leaseSession struct {
	leaser Leaser
	ttl    time.Duration
	m      ReadSideMetrics

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewer has stopped
	lostF  atomic.Bool

	share   *partitionSet // nil unless the lease is a partition's
	yielded atomic.Bool   // given up for the share: already uncounted

	mu    sync.Mutex
	lease Lease
}

// renewEvery and pollEvery derive the renewal and standby intervals from
// the TTL.
func renewEvery(ttl time.Duration) time.Duration { return ttl / 3 }
func pollEvery(ttl time.Duration) time.Duration  { return ttl / 5 }

// acquireLease blocks until holder holds lease name, calling standby with
// the lease that stands in the way (or the error that prevented the
// attempt) before each wait. It returns ctx's error when ctx ends first,
// and other errors (ErrClosed, ErrInvalid) at once.
//
// share, when not nil, is the partition set the lease is a partition of:
// the lease is only tried while this process holds less than its fair
// share, and given up at a renewal when it holds more.
func acquireLease(ctx context.Context, leaser Leaser, m ReadSideMetrics, name, holder string, ttl time.Duration,
	share *partitionSet, standby func(other Lease, err error)) (*leaseSession, error) {
	for {
		start := time.Now()
		var l Lease
		var err error
		if share != nil && !share.mayTake(ctx) {
			l, err = Lease{Name: name}, ErrLeaseHeld // our share is full: stand by
		} else {
			l, err = leaser.AcquireLease(ctx, name, holder, ttl)
		}
		if err == nil {
			s := &leaseSession{leaser: leaser, ttl: ttl, m: m, lease: l, done: make(chan struct{}), share: share}
			s.ctx, s.cancel = context.WithCancel(WithLease(ctx, l))
			if m != nil {
				m.ObserveLease(LeaseEvent{Lease: l, Change: LeaseAcquired})
			}
			if share != nil {
				share.held.Add(1)
			}
			go s.renew(start)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		standby(l, err)
		t := time.NewTimer(pollEvery(ttl))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Lease returns the lease as last renewed.
func (s *leaseSession) Lease() Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// lost reports whether the lease was lost (not released).
func (s *leaseSession) lost() bool { return s.lostF.Load() }

// renew extends the lease every third of the TTL. The lease counts as lost
// when the store says another holder has it (or it comes back with another
// epoch: someone held it in between), or when no renewal has succeeded for
// a whole TTL since the start of the last good one: by then the store may
// have given it to another process, so this one must stop acting on it.
func (s *leaseSession) renew(lastGood time.Time) {
	defer close(s.done)
	t := time.NewTimer(renewEvery(s.ttl))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		held := s.Lease()
		start := time.Now()
		rctx, cancel := context.WithDeadline(s.ctx, lastGood.Add(s.ttl))
		l, err := s.leaser.AcquireLease(rctx, held.Name, held.Holder, s.ttl)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && l.Epoch == held.Epoch:
			s.mu.Lock()
			s.lease = l
			s.mu.Unlock()
			lastGood = start
			if s.share != nil && s.share.tryYield(s.ctx) {
				// More processes run the partitions now: give this one
				// up (the run stops cleanly and releases it).
				s.yielded.Store(true)
				s.cancel()
				return
			}
		case err == nil, errors.Is(err, ErrLeaseHeld), time.Since(lastGood) >= s.ttl:
			s.lose()
			return
		}
		t.Reset(max(0, min(renewEvery(s.ttl), time.Until(lastGood.Add(s.ttl)))))
	}
}

func (s *leaseSession) lose() {
	if s.lostF.CompareAndSwap(false, true) {
		if s.m != nil {
			s.m.ObserveLease(LeaseEvent{Lease: s.Lease(), Change: LeaseLost})
		}
		s.cancel()
	}
}

// release stops renewing and, unless the lease was lost, gives it up so a
// standby takes over at once rather than after the TTL.
func (s *leaseSession) release() {
	s.cancel()
	<-s.done
	if s.share != nil && !s.yielded.Load() {
		s.share.held.Add(-1)
	}
	if s.lost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.ttl)
	defer cancel()
	l := s.Lease()
	if err := s.leaser.ReleaseLease(ctx, l); err == nil && s.m != nil {
		s.m.ObserveLease(LeaseEvent{Lease: l, Change: LeaseReleased})
	}
}

// unavailableDelay is the wait before retry n+1 (n ≥ 0) after the store
// was unavailable: 100 ms doubling to 2 s, so a runner resumes within about
// 2 s of the store coming back.
func unavailableDelay(n int) time.Duration {
	return min(100*time.Millisecond<<min(n, 5), 2*time.Second)
}

// sleepCtx waits d or until ctx is done, reporting whether the full wait
// happened.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
