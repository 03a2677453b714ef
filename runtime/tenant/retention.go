package tenant

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// Retention through a tenant's view. The global log and the store's
// idempotency keys are shared by every tenant: the log is truncated
// through a position for all of them at once, and expired keys are purged
// for all at once. Those two operations cannot be scoped to one tenant, so
// a view refuses them with ErrStoreWide; what can be scoped is answered
// for the tenant: where its log starts (Truncated) and its checkpoints
// (Checkpoints), so that lifecycle.PlanTruncation through a view reports
// the tenant's uncovered streams and lagging checkpoints, under the
// tenant's names. An operator truncates and purges on the store
// underneath (cqrsctl archive, cqrsctl purge-keys).

// ErrStoreWide reports an operation that acts on the whole shared store
// and cannot be scoped to one tenant (lifecycle.Retention's TruncateLog and
// PurgeExpiredKeys): call it on the store underneath. Errors that wrap it
// also match errors.ErrUnsupported.
var ErrStoreWide = errors.New("the operation acts on the whole shared store, not one tenant")

var (
	_ lifecycle.Retention        = (*Store)(nil)
	_ lifecycle.CheckpointLister = (*Store)(nil)
)

// storeWide is the error of a Retention method a view cannot scope.
func (s *Store) storeWide(op string) error {
	return fmt.Errorf("cqrsgen/tenant: %s through tenant %q's view: %w (%w)", op, s.name, ErrStoreWide, errors.ErrUnsupported)
}

// retention returns the Retention of the store underneath.
func (s *Store) retention(op string) (lifecycle.Retention, error) {
	if err := s.closed(op); err != nil {
		return nil, err
	}
	r, ok := s.inner.(lifecycle.Retention)
	if !ok {
		return nil, fmt.Errorf("cqrsgen/tenant: %s: store %T has no retention: %w", op, s.inner, errors.ErrUnsupported)
	}
	return r, nil
}

// PurgeExpiredKeys fails with ErrStoreWide: the store's expired keys are
// purged for every tenant at once, on the store underneath. (An expired
// key of the tenant already reads as absent; a purge only frees space.)
func (s *Store) PurgeExpiredKeys(context.Context) (uint64, error) {
	if _, err := s.retention("purge expired keys"); err != nil {
		return 0, err
	}
	return 0, s.storeWide("purge expired keys")
}

// Truncated returns the last position truncated from the shared log: the
// tenant's log, like every tenant's, starts after it.
func (s *Store) Truncated(ctx context.Context) (uint64, error) {
	r, err := s.retention("truncated")
	if err != nil {
		return 0, err
	}
	return r.Truncated(ctx)
}

// TruncateLog fails with ErrStoreWide: a truncation removes every tenant's
// events up to a position, so it is made on the store underneath, after
// lifecycle.PlanTruncation on it (which sees every tenant's streams).
func (s *Store) TruncateLog(_ context.Context, through uint64) (lifecycle.TruncateResult, error) {
	if _, err := s.retention(fmt.Sprintf("truncate the log through %d", through)); err != nil {
		return lifecycle.TruncateResult{}, err
	}
	return lifecycle.TruncateResult{}, s.storeWide(fmt.Sprintf("truncate the log through %d", through))
}

// Checkpoints yields the tenant's checkpoints, under the tenant's names,
// in the store underneath's order, when that store lists checkpoints
// (lifecycle.CheckpointLister); else it yields one error matching
// errors.ErrUnsupported.
func (s *Store) Checkpoints(ctx context.Context) iter.Seq2[lifecycle.CheckpointInfo, error] {
	return func(yield func(lifecycle.CheckpointInfo, error) bool) {
		if err := s.closed("list checkpoints"); err != nil {
			yield(lifecycle.CheckpointInfo{}, err)
			return
		}
		cl, ok := s.inner.(lifecycle.CheckpointLister)
		if !ok {
			yield(lifecycle.CheckpointInfo{}, fmt.Errorf("cqrsgen/tenant: list checkpoints: store %T cannot list them: %w", s.inner, errors.ErrUnsupported))
			return
		}
		for c, err := range cl.Checkpoints(ctx) {
			if err != nil {
				yield(c, err)
				return
			}
			name, ok := strings.CutPrefix(c.Name, s.prefix)
			if !ok {
				continue
			}
			if !yield(lifecycle.CheckpointInfo{Name: name, Position: c.Position}, nil) {
				return
			}
		}
	}
}
