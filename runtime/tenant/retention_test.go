package tenant_test

import (
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
)

// plain hides every method of a store but runtime.Store's.
type plain struct{ runtime.Store }

// TestRetentionWithoutStoreRetention: over a store without retention or a
// checkpoint list, a view's retention methods fail with
// errors.ErrUnsupported (not ErrStoreWide), and after Close with
// runtime.ErrClosed.
func TestRetentionWithoutStoreRetention(t *testing.T) {
	view, err := tenant.Scope(plain{memory.New()}, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"Truncated":        func() error { _, err := view.Truncated(ctx); return err },
		"TruncateLog":      func() error { _, err := view.TruncateLog(ctx, 1); return err },
		"PurgeExpiredKeys": func() error { _, err := view.PurgeExpiredKeys(ctx); return err },
		"Checkpoints": func() error {
			for _, err := range view.Checkpoints(ctx) {
				return err
			}
			return nil
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, errors.ErrUnsupported) || errors.Is(err, tenant.ErrStoreWide) {
			t.Errorf("%s over a store without retention: %v; want errors.ErrUnsupported only", name, err)
		}
	}
	if _, err := lifecycle.PlanTruncation(ctx, view, 1); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("PlanTruncation through the view: %v; want errors.ErrUnsupported", err)
	}
	_ = view.Close()
	for name, call := range calls {
		if err := call(); !errors.Is(err, runtime.ErrClosed) {
			t.Errorf("%s after Close: %v; want runtime.ErrClosed", name, err)
		}
	}
}
