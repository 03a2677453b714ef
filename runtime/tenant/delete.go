package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

var _ lifecycle.StreamDeleter = (*Store)(nil)

// DeleteStream deletes the tenant's stream req.Stream (see
// lifecycle.StreamDeleter) when the store underneath can delete streams, and
// fails with an error matching errors.ErrUnsupported when it cannot. A hard
// delete removes the idempotency keys recorded for the stream, which are
// the tenant's own: no other tenant's stream, key or snapshot is touched.
func (s *Store) DeleteStream(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, error) {
	if err := s.closed("delete " + req.Stream.String()); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	if err := lifecycle.ValidateDelete(req); err != nil {
		return lifecycle.DeleteResult{}, err
	}
	d, ok := s.inner.(lifecycle.StreamDeleter)
	if !ok {
		return lifecycle.DeleteResult{}, fmt.Errorf("cqrsgen/tenant: delete %s: store %T cannot delete streams: %w", req.Stream, s.inner, errors.ErrUnsupported)
	}
	named := req.Stream
	scoped, err := s.scope(req.Stream)
	if err != nil {
		return lifecycle.DeleteResult{}, err
	}
	req.Stream = scoped
	res, err := d.DeleteStream(ctx, req)
	if err != nil {
		return res, s.unscopeErr(err)
	}
	res.Tombstone.Stream = named
	return res, nil
}
