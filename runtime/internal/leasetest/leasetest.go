// Package leasetest is a lease.Leaser over any store for the runtime's
// tests: processes of one test share a Table, as they would a database's.
package leasetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

// Table is an in-memory lease table shared by the Stores of one
// test, standing in for a database's.
type Table struct {
	mu     sync.Mutex
	leases map[string]lease.Lease
}

// Store is one process's view of a shared store with leases.
type Store struct {
	runtime.Store
	t *Table
}

// New returns the view of s through which one process uses the leases of
// t.
func New(s runtime.Store, t *Table) *Store { return &Store{Store: s, t: t} }

// NewTable returns an empty lease table.
func NewTable() *Table { return &Table{leases: map[string]lease.Lease{}} }

// Get returns the lease named name as the table holds it.
func (t *Table) Get(name string) lease.Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leases[name]
}

// Set replaces the lease l.Name, as another process taking it would.
func (t *Table) Set(l lease.Lease) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leases[l.Name] = l
}

// AcquireLease implements lease.Leaser.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (lease.Lease, error) {
	if err := ctx.Err(); err != nil {
		return lease.Lease{}, err
	}
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	l, now := s.t.leases[name], time.Now()
	switch {
	case l.Holder == holder:
	case l.Holder == "" || now.After(l.Expires):
		l.Epoch++
	default:
		return l, fmt.Errorf("lease %q: %w", name, lease.ErrHeld)
	}
	l.Name, l.Holder, l.Expires = name, holder, now.Add(ttl)
	s.t.leases[name] = l
	return l, nil
}

// ReleaseLease implements lease.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, l lease.Lease) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if cur := s.t.leases[l.Name]; cur.Holder == l.Holder && cur.Epoch == l.Epoch {
		cur.Holder = ""
		s.t.leases[l.Name] = cur
	}
	return nil
}

// SaveCheckpointLeased implements lease.Leaser.
func (s *Store) SaveCheckpointLeased(ctx context.Context, l lease.Lease, name string, pos uint64) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if cur := s.t.leases[l.Name]; cur.Holder != l.Holder || cur.Epoch != l.Epoch {
		return lease.ErrLost
	}
	return s.Store.SaveCheckpoint(ctx, name, pos)
}

// Leases implements lease.Leaser.
func (s *Store) Leases(ctx context.Context) ([]lease.Lease, error) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	var out []lease.Lease
	for _, l := range s.t.leases {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
