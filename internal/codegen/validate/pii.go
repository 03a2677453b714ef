package validate

import (
	"fmt"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// checkPII reports fields tagged pii where the generated code cannot seal
// them: the tag belongs on the fields of events (and of the older forms
// upcasters read), whose codecs the repository calls with the store's keys;
// a struct with such fields cannot also be a field of another struct
// (a state, say), whose codec has no keys to seal with.
func checkPII(pkg *model.Package) []model.Error {
	var errs []model.Error
	sealable := map[*model.Struct]bool{}
	for _, a := range pkg.Aggregates {
		for _, e := range a.Events {
			sealable[e.Struct] = true
			for _, u := range e.Upcasts {
				sealable[u.Struct] = true
			}
		}
	}
	for _, s := range pkg.Structs {
		if s.HasPII() && !sealable[s] {
			for _, f := range s.Fields {
				if f.PII != nil {
					errs = append(errs, model.Error{Pos: f.Pos, Msg: fmt.Sprintf(
						"field %s.%s: tagged pii, but %s is not an event: only the fields of //cqrs:event types (and of the older forms their upcasters read) are sealed; remove the tag, or move the field to an event",
						s.GoName, f.GoName, s.GoName)})
				}
			}
		}
		for _, f := range s.Fields {
			if inner := structIn(f.Type); inner != nil && inner.HasPII() {
				errs = append(errs, model.Error{Pos: f.Pos, Msg: fmt.Sprintf(
					"field %s.%s: %s has fields tagged pii, which are sealed only in events of its own, not inside another struct; copy the fields you need into %s instead",
					s.GoName, f.GoName, inner.GoName, s.GoName)})
			}
		}
	}
	return errs
}

// structIn returns the struct a field type holds, through pointers,
// slices, arrays and map values, or nil.
func structIn(t *model.Type) *model.Struct {
	for t != nil {
		if t.Kind == model.StructKind {
			return t.Struct
		}
		t = t.Elem
	}
	return nil
}
