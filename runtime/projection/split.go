package projection

import (
	"context"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// splitRunners returns the runners of the partitions of the projection
// added under name with Partitions, in partition order, or nil when name
// is not such a projection (a projection of that exact name wins).
func (g *Group) splitRunners(name string) []*runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.runners[name]; ok {
		return nil
	}
	var out []*runner
	for _, r := range g.order {
		if r.part != nil && r.p.Name == PartitionName(name, *r.part) {
			out = append(out, r)
		}
	}
	return out
}

// waitForSplit waits until every partition of a split projection has
// processed every record up to position: each partition skips the records
// of the others' streams, so each reaches position on its own.
func waitForSplit(ctx context.Context, parts []*runner, position uint64) error {
	for _, r := range parts {
		if err := r.waitFor(ctx, position); err != nil {
			return err
		}
	}
	return nil
}

// errRebuildSplit is Rebuild's answer for the name of a split projection:
// its partitions may be held by other replicas, so rebuilding "all of it"
// from one process could wait for leases forever; each partition is
// rebuilt by its own name, where the replica holding it carries it out.
func errRebuildSplit(name string, parts []*runner) error {
	return fmt.Errorf("%w: projection %q is split into %d partitions: rebuild each by its name, projection.PartitionName(%q, projection.Partition{Index: i, Count: %d})",
		runtime.ErrInvalid, name, len(parts), name, len(parts))
}
