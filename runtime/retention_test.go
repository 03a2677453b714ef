package runtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestRepositoryAfterTruncation: a stream with a snapshot covering its
// truncated events loads and executes as before; one without fails with a
// *runtime.TruncatedError naming it, as does Events from before the first
// kept version; Events from there on works.
func TestRepositoryAfterTruncation(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	agg.SnapshotEvery = 3
	store := memory.New()
	repo := runtime.NewRepository(store, agg)
	// Positions 1-3: covered v1-v3 (snapshot at 3); 4-5: bare v1-v2 (no
	// snapshot); 6: covered v4; 7: bare v3. Truncated through 5.
	noSnap := runtime.NewRepository(store, agg, runtime.WithSnapshotEvery(0))
	for _, id := range []string{"covered", "covered", "covered", "bare", "bare", "covered", "bare"} {
		r := repo
		if id == "bare" {
			r = noSnap
		}
		if _, err := r.Execute(ctx, id, add{N: 2}); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := lifecycle.PlanTruncation(ctx, store, 5)
	if err != nil {
		t.Fatal(err)
	}
	bare := runtime.StreamID{Type: "Counter", ID: "bare"}
	if plan.Events != 5 || plan.Streams != 2 || plan.UncoveredCount != 1 || plan.Uncovered[0] != bare {
		t.Fatalf("plan = %+v, want 5 events, 2 streams, bare uncovered", plan)
	}
	if _, err := store.TruncateLog(ctx, 5); err != nil {
		t.Fatal(err)
	}

	s, v, err := repo.Load(ctx, "covered")
	if err != nil || v != 4 || s.Total != 8 {
		t.Errorf("Load(covered) = %+v, %d, %v; want total 8 at version 4", s, v, err)
	}
	if v, err := repo.Execute(ctx, "covered", add{N: 1}); err != nil || v != 5 {
		t.Errorf("Execute(covered) = %d, %v", v, err)
	}

	_, _, err = repo.Load(ctx, "bare")
	var te *runtime.TruncatedError
	if !errors.As(err, &te) || te.Stream != bare || te.Through != 2 || !errors.Is(err, runtime.ErrTruncated) {
		t.Errorf("Load(bare) = %v, want a *runtime.TruncatedError for %s through 2", err, bare)
	}
	if _, err := repo.Execute(ctx, "bare", add{N: 1}); !errors.Is(err, runtime.ErrTruncated) {
		t.Errorf("Execute(bare) = %v, want ErrTruncated (nothing decided on a partial state)", err)
	}
	for _, err := range repo.Events(ctx, "bare", 0) {
		if !errors.Is(err, runtime.ErrTruncated) {
			t.Errorf("Events(bare, 0) yielded %v first, want ErrTruncated", err)
		}
		break
	}
	var got []uint64
	for e, err := range repo.Events(ctx, "bare", te.Through) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Version)
	}
	if len(got) != 1 || got[0] != 3 {
		t.Errorf("Events(bare, after %d) = versions %v, want [3]", te.Through, got)
	}
}
