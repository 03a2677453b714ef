package storetest_test

import (
	"context"
	"iter"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// Broken deleters, run by TestBrokenStoreHelper like the broken stores of
// storetest_test.go.
func init() {
	brokenStores["softIsHard"] = func() runtime.Store { return swapsModes{memory.New(), runtime.HardDelete} }
	brokenStores["hardIsSoft"] = func() runtime.Store { return swapsModes{memory.New(), runtime.SoftDelete} }
	brokenStores["hidesTombstones"] = func() runtime.Store { return hidesTombstones{memory.New()} }
}

// swapsModes deletes in mode whatever mode is asked.
type swapsModes struct {
	*memory.Store
	mode runtime.DeleteMode
}

func (s swapsModes) DeleteStream(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.DeleteResult, error) {
	req.Mode = s.mode
	return s.Store.DeleteStream(ctx, req)
}

// hidesTombstones leaves tombstones out of the global log.
type hidesTombstones struct{ *memory.Store }

func (s hidesTombstones) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		for rec, err := range s.Store.ReadAll(ctx, after) {
			if err == nil && runtime.IsTombstone(rec) {
				continue
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

func TestSuiteCatchesBrokenDeletes(t *testing.T) {
	cases := []struct {
		store    string
		wantFail []string
		wantPass []string
	}{
		{"softIsHard", []string{"Delete/Soft", "Delete/DryRun"}, []string{"Delete/Hard", "Delete/RaceAppends/Hard", "Append/ReadBack"}},
		{"hardIsSoft", []string{"Delete/Hard", "Delete/SoftThenHard", "Delete/RaceAppends/Hard", "Delete/Tenants"}, []string{"Delete/Soft", "Delete/RaceAppends/Soft"}},
		{"hidesTombstones", []string{"Delete/Soft", "Delete/Hard", "Delete/Tenants"}, []string{"Delete/DryRun", "Delete/BadInput", "Append/ReadBack"}},
	}
	for _, c := range cases {
		t.Run(c.store, func(t *testing.T) {
			t.Parallel()
			checkBrokenSuite(t, c.store, c.wantFail, c.wantPass)
		})
	}
}
