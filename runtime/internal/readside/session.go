// Package readside holds what the projection and saga runners share: the
// projection configuration (which saga.Projection passes through), lease
// tenures, and finding the instrumentation behind a store.
package readside

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

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Session is one tenure of a lease: acquired, renewed in the
// background, and ended by release or loss. ctx is cancelled when the
// lease is lost or released.
type Session struct {
	leaser lease.Leaser
	ttl    time.Duration
	m      LeaseObserver

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewer has stopped
	lostF  atomic.Bool

	share   Share       // nil unless the lease is a partition's
	yielded atomic.Bool // given up for the share: already uncounted

	mu    sync.Mutex
	lease lease.Lease
}

// renewEvery and pollEvery derive the renewal and standby intervals from
// the TTL.
func renewEvery(ttl time.Duration) time.Duration { return ttl / 3 }
func pollEvery(ttl time.Duration) time.Duration  { return ttl / 5 }

// Acquire blocks until holder holds lease name, calling standby with
// the lease that stands in the way (or the error that prevented the
// attempt) before each wait. It returns ctx's error when ctx ends first,
// and other errors (runtime.ErrClosed, runtime.ErrInvalid) at once.
//
// share, when not nil, is the partition set the lease is a partition of:
// the lease is only tried while this process holds less than its fair
// share, and given up at a renewal when it holds more.
func Acquire(ctx context.Context, leaser lease.Leaser, m LeaseObserver, name, holder string, ttl time.Duration,
	share Share, standby func(other lease.Lease, err error)) (*Session, error) {
	for {
		start := time.Now()
		var l lease.Lease
		var err error
		if share != nil && !share.MayTake(ctx) {
			l, err = lease.Lease{Name: name}, lease.ErrHeld // our share is full: stand by
		} else {
			l, err = leaser.AcquireLease(ctx, name, holder, ttl)
		}
		if err == nil {
			s := &Session{leaser: leaser, ttl: ttl, m: m, lease: l, done: make(chan struct{}), share: share}
			s.ctx, s.cancel = context.WithCancel(lease.NewContext(ctx, l))
			if m != nil {
				m.ObserveLease(lease.Event{Lease: l, Change: lease.Acquired})
			}
			if share != nil {
				share.Hold(1)
			}
			go s.renew(start)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, lease.ErrHeld) && !errors.Is(err, runtime.ErrUnavailable) {
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
func (s *Session) Lease() lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// Lost reports whether the lease was lost (not released).
func (s *Session) Lost() bool { return s.lostF.Load() }

// renew extends the lease every third of the TTL. The lease counts as lost
// when the store says another holder has it (or it comes back with another
// epoch: someone held it in between), or when no renewal has succeeded for
// a whole TTL since the start of the last good one: by then the store may
// have given it to another process, so this one must stop acting on it.
func (s *Session) renew(lastGood time.Time) {
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
			if s.share != nil && s.share.TryYield(s.ctx) {
				// More processes run the partitions now: give this one
				// up (the run stops cleanly and releases it).
				s.yielded.Store(true)
				s.cancel()
				return
			}
		case err == nil, errors.Is(err, lease.ErrHeld), time.Since(lastGood) >= s.ttl:
			s.Lose()
			return
		}
		t.Reset(max(0, min(renewEvery(s.ttl), time.Until(lastGood.Add(s.ttl)))))
	}
}

func (s *Session) Lose() {
	if s.lostF.CompareAndSwap(false, true) {
		if s.m != nil {
			s.m.ObserveLease(lease.Event{Lease: s.Lease(), Change: lease.Lost})
		}
		s.cancel()
	}
}

// Release stops renewing and, unless the lease was lost, gives it up so a
// standby takes over at once rather than after the TTL.
func (s *Session) Release() {
	s.cancel()
	<-s.done
	if s.share != nil && !s.yielded.Load() {
		s.share.Hold(-1)
	}
	if s.Lost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.ttl)
	defer cancel()
	l := s.Lease()
	if err := s.leaser.ReleaseLease(ctx, l); err == nil && s.m != nil {
		s.m.ObserveLease(lease.Event{Lease: l, Change: lease.Released})
	}
}

// LeaseObserver receives the changes of the leases this process holds
// (projection.Metrics).
type LeaseObserver interface {
	ObserveLease(e lease.Event)
}

// Share is the fair share of the partitions of a split projection that
// this process may hold (see projection.Partitions).
type Share interface {
	// MayTake reports whether this process may take one more partition.
	MayTake(ctx context.Context) bool
	// TryYield gives up one held partition when this process holds more
	// than its fair share; it reports whether the caller is to give its up.
	TryYield(ctx context.Context) bool
	// Hold counts delta partitions more (or fewer) held by this process.
	Hold(delta int32)
}

// Held returns the session of a lease l that the caller already holds and
// does not renew (a rebuild for the length of one call).
func Held(leaser lease.Leaser, ttl time.Duration, l lease.Lease) *Session {
	return &Session{leaser: leaser, ttl: ttl, lease: l}
}

// Context returns the context of the tenure: it carries the lease
// (lease.FromContext) and is cancelled when the lease is lost or released.
func (s *Session) Context() context.Context { return s.ctx }

// SaveCheckpoint saves a checkpoint fenced by the session's lease.
func (s *Session) SaveCheckpoint(ctx context.Context, name string, pos uint64) error {
	return s.leaser.SaveCheckpointLeased(ctx, s.Lease(), name, pos)
}

// PollEvery is how often a standby tries to take a lease of the given TTL.
func PollEvery(ttl time.Duration) time.Duration { return pollEvery(ttl) }

// Holder is this process's default lease holder name: host name, process
// id and a random suffix.
var Holder = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
})
