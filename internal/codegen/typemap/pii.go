package typemap

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// piiTagHelp is how a cqrs struct tag is written.
const piiTagHelp = "write `cqrs:\"pii=Field\"`, naming the string field of the same struct that holds the subject id"

// parseCqrsTag returns the subject field named by a struct tag's cqrs
// entry (`cqrs:"pii=Subject"`), "" when there is none, and a problem.
func parseCqrsTag(tag string) (subject string, problem string) {
	v, ok := reflect.StructTag(tag).Lookup("cqrs")
	if !ok {
		return "", ""
	}
	name, val, found := strings.Cut(v, "=")
	switch {
	case name != "pii" || !found:
		return "", fmt.Sprintf("cqrs tag %q is not understood: %s", v, piiTagHelp)
	case val == "" || strings.ContainsAny(val, " ,=\t"):
		return "", fmt.Sprintf("cqrs tag %q names no field: %s", v, piiTagHelp)
	}
	return val, ""
}

// resolvePII links each field of s tagged pii to its subject field and
// reports every tag that cannot be honoured: the tagged field and its
// subject must both be strings (of any string type), the subject must be
// another field of s, untagged.
func (r *Resolver) resolvePII(s *model.Struct) {
	tagged := map[*model.Field]bool{} // before any invalid tag is dropped
	for _, f := range s.Fields {
		tagged[f] = f.PII != nil
	}
	for _, f := range s.Fields {
		if f.PII == nil {
			continue
		}
		where := "field " + s.GoName + "." + f.GoName
		pos := f.Pos
		fail := func(format string, args ...any) {
			r.errors = append(r.errors, model.Error{Pos: pos, Msg: where + ": " + fmt.Sprintf(format, args...)})
			f.PII = nil
		}
		if f.Type.Kind != model.String {
			fail("tagged pii but its type is %s: only string fields can be sealed (tag the string fields that hold personal data)", kindName(f.Type))
			continue
		}
		var subject *model.Field
		for _, c := range s.Fields {
			if c.GoName == f.PII.SubjectName || (c.GoName[strings.LastIndexByte(c.GoName, '.')+1:] == f.PII.SubjectName && subject == nil) {
				subject = c
			}
		}
		switch {
		case subject == nil:
			fail("pii=%s: %s has no field %s to take the subject id from", f.PII.SubjectName, s.GoName, f.PII.SubjectName)
		case subject == f:
			fail("pii=%s names the field itself: the subject id must be stored in the clear, in another field", f.PII.SubjectName)
		case tagged[subject]:
			fail("pii=%s names a field that is itself tagged pii: the subject id must be stored in the clear", f.PII.SubjectName)
		case subject.Type.Kind != model.String:
			fail("pii=%s names field %s.%s of type %s: the subject id must be a string", f.PII.SubjectName, s.GoName, subject.GoName, kindName(subject.Type))
		default:
			f.PII.Subject = subject
		}
	}
}

func kindName(t *model.Type) string {
	if t.Name != "" {
		return t.Name
	}
	return t.Kind.String()
}
