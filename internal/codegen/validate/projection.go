package validate

import (
	"fmt"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// ReservedCheckpointPrefix starts the checkpoint names the runtime keeps
// for itself (runtime/projection.go); a projection may not use it.
const ReservedCheckpointPrefix = "cqrsgen:"

// checkProjections reports projection checkpoint names that are reserved
// or used twice in the package (two runners on one checkpoint would
// overwrite each other's position).
func checkProjections(pkg *model.Package) []model.Error {
	var errs []model.Error
	names := map[string]*model.Projection{}
	for _, p := range pkg.Projections {
		if strings.HasPrefix(p.Name, ReservedCheckpointPrefix) {
			errs = append(errs, model.Error{Pos: p.Pos, Msg: fmt.Sprintf("projection %s has checkpoint name %q: names starting %q are reserved for the runtime", p.GoName, p.Name, ReservedCheckpointPrefix)})
			continue
		}
		if prev := names[p.Name]; prev != nil {
			errs = append(errs, model.Error{Pos: p.Pos, Msg: fmt.Sprintf("projection %s has checkpoint name %q, already used by projection %s (%s)", p.GoName, p.Name, prev.GoName, short(prev.Pos))})
			continue
		}
		names[p.Name] = p
	}
	return errs
}
