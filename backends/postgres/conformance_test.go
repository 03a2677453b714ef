package postgres

import (
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestConformance runs the common store suite, each store in its own
// schema; Reopen closes the store and opens the same schema again.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) runtime.Store { return newStore(t) },
		Reopen: func(t *testing.T, s runtime.Store) runtime.Store {
			ps := s.(*Store)
			if err := ps.Close(); err != nil && !errors.Is(err, runtime.ErrClosed) {
				t.Fatalf("Close: %v", err)
			}
			return openIn(t, ps.opt.schema)
		},
	})
}
