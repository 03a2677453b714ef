package validate

import (
	"fmt"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// maxSagaName is the longest saga name: the runtime prefixes it with
// "cqrsgen.saga-deadlines." to form a stream type of at most 255 bytes.
const maxSagaName = 255 - len("cqrsgen.saga-deadlines.")

// checkSagas reports saga names used twice in the package (two sagas would
// share instance streams, checkpoint and idempotency keys) or too long.
func checkSagas(pkg *model.Package) []model.Error {
	var errs []model.Error
	names := map[string]*model.Saga{}
	for _, s := range pkg.Sagas {
		if len(s.Name) > maxSagaName {
			errs = append(errs, model.Error{Pos: s.Pos, Msg: fmt.Sprintf("saga %s has a name of %d bytes, limit %d", s.GoName, len(s.Name), maxSagaName)})
			continue
		}
		if prev := names[s.Name]; prev != nil {
			errs = append(errs, model.Error{Pos: s.Pos, Msg: fmt.Sprintf("saga %s has name %q, already used by saga %s (%s)", s.GoName, s.Name, prev.GoName, short(prev.Pos))})
			continue
		}
		names[s.Name] = s
	}
	return errs
}
