package lock

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Advice ends every error about a breaking change to an event.
const (
	adviceEvent  = "bump version= and add a //cqrs:upcast from the old shape, or run with -accept-breaking"
	adviceAccept = "or run with -accept-breaking"
)

// Check compares the entries of the package (cur, from Entries) with the
// lock's (old, from Parse of the file at path) and returns every breaking
// change as a positioned error: at the type or field of the package when
// there is one, else at the lock's line. No error means the lock may be
// rewritten with cur.
func Check(path string, old, cur []*Entry) []model.Error {
	var errs []model.Error
	errorf := func(pos model.Pos, format string, args ...any) {
		errs = append(errs, model.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
	}
	at := func(e *Entry) model.Pos { return model.Pos{File: path, Line: e.Line, Col: 1} }
	byKey := map[string]*Entry{}
	states := map[string]*Entry{}
	for _, e := range cur {
		byKey[e.key()] = e
		if e.Kind == KindState {
			states[e.Stream] = e
		}
	}
	oldKeys := map[string]bool{}
	for _, o := range old {
		oldKeys[o.key()] = true
	}
	isNew := func(e *Entry) bool { return !oldKeys[e.key()] }
	for _, o := range old {
		n := byKey[o.key()]
		if o.Kind == KindState {
			if n != nil {
				continue // a state's shape may change: old snapshots are ignored
			}
			if same := find(cur, func(e *Entry) bool { return e.Kind == KindState && e.GoName == o.GoName }); same != nil {
				errorf(same.Pos, "stream type name of %s changed from %q to %q: its stored streams would no longer be found; restore name=%s on the aggregate, %s",
					o.GoName, o.Stream, same.Stream, o.Stream, adviceAccept)
				continue
			}
			newState := func(e *Entry) bool { return e.Kind == KindState && isNew(e) }
			r := renamed(o, cur, newState)
			if r == nil {
				// A state's shape may change with its name: one new
				// aggregate is the likely rename even so.
				r = renamed(&Entry{Shape: nil}, cur, newState)
			}
			if r != nil {
				errorf(r.Pos, "aggregate %s is new, and aggregate %s (stream type %q) is in %s but no longer in the package: if %s is %s renamed, add name=%s to its //cqrs:aggregate directive (the stream type name is stored, the Go name is not), %s",
					r.GoName, o.GoName, o.Stream, FileName, r.GoName, o.GoName, o.Stream, adviceAccept)
				continue
			}
			errorf(at(o), "aggregate %s (stream type %q) is in %s but no longer in the package: its stored streams could no longer be read; restore it, %s",
				o.GoName, o.Stream, FileName, adviceAccept)
			continue
		}
		if isSagaEntry(o) {
			if n == nil {
				errs = append(errs, checkSagaGone(path, o, cur)...)
				continue
			}
		} else if states[o.Stream] == nil {
			continue // the aggregate is gone or renamed: reported once, above
		}
		if n != nil && (n.Kind == KindRetired || o.Kind == KindRetired) {
			continue // retired now (skipped on read), or read by a type again
		}
		if n == nil && o.Kind == KindRetired {
			errorf(states[o.Stream].Pos, "%s was retired on %s (%s line %d) and no longer is: streams holding it could no longer be loaded; keep //cqrs:retired %s beside //cqrs:aggregate, %s",
				o.ident(), states[o.Stream].GoName, FileName, o.Line, o.ident(), adviceAccept)
			continue
		}
		if n == nil {
			sameName := find(cur, func(e *Entry) bool { return e.Kind == KindEvent && e.Stream == o.Stream && e.Name == o.Name })
			sameType := find(cur, func(e *Entry) bool { return e.Kind == KindEvent && e.Stream == o.Stream && e.GoName == o.GoName })
			switch {
			case sameName != nil && sameName.Version < o.Version:
				errorf(sameName.Pos, "event %s is version %d, but %s records %s@%d: versions never go down; restore version=%d, %s",
					sameName.GoName, sameName.Version, FileName, o.Name, o.Version, o.Version, adviceAccept)
			case sameName == nil && sameType != nil && o.Kind == KindEvent:
				errorf(sameType.Pos, "wire name of %s changed from %q to %q: events stored as %s could no longer be read; restore name=%s, or bump version= and add a //cqrs:upcast from=%s from the old shape, %s",
					o.GoName, o.Name, sameType.Name, o.ident(), o.Name, o.ident(), adviceAccept)
			case o.Kind == KindEvent && renamed(o, cur, func(e *Entry) bool { return e.Kind == KindEvent && e.Stream == o.Stream && isNew(e) }) != nil:
				r := renamed(o, cur, func(e *Entry) bool { return e.Kind == KindEvent && e.Stream == o.Stream && isNew(e) })
				opts := "name=" + o.Name
				if r.Version != o.Version {
					opts += " version=" + strconv.FormatUint(uint64(o.Version), 10)
				}
				errorf(r.Pos, "event %s is new and has the fields of %s (event %s), which is in %s but no longer in the package: if %s is %s renamed, add %s to its //cqrs:event directive (the wire name is stored, the Go name is not), %s",
					r.GoName, o.ident(), o.GoName, FileName, r.GoName, o.GoName, opts, adviceAccept)
			default:
				what := "event " + o.GoName
				if o.Kind == KindUpcast {
					what = "upcaster input " + o.GoName
				}
				retire := ""
				if find(cur, func(e *Entry) bool { return e.Stream == o.Stream && e.Name == o.Name && e.Kind != KindState }) == nil {
					// Only a name nothing reads can be retired; an old
					// version of a current event needs its upcaster.
					retire = ", retire it with //cqrs:retired " + o.ident() + " beside //cqrs:aggregate (loads then skip it)"
				}
				errorf(at(o), "%s (%s) is in %s but nothing in the package reads %s any more: events stored so could no longer be decoded; restore the event or its //cqrs:upcast%s, %s",
					o.ident(), what, FileName, o.ident(), retire, adviceAccept)
			}
			continue
		}
		for _, c := range diffStruct(nil, o.Shape, n.Shape) {
			if c.compatible {
				continue
			}
			pos := c.pos
			if pos == (model.Pos{}) {
				pos = n.Pos
			}
			if n.Kind == KindUpcast {
				stored := "events"
				if isSagaEntry(n) {
					stored = "instance states"
				}
				errorf(pos, "%s: %s must describe %s stored as %s, which %s (line %d) records differently; fix %s, %s",
					c.describe(n.GoName, true), n.GoName, stored, n.ident(), FileName, o.Line, n.GoName, adviceAccept)
				continue
			}
			errorf(pos, "%s: %s", c.describe(n.GoName, false), adviceEvent)
		}
	}
	return errs
}

// renamed returns the one entry of cur that keep selects and that has o's
// shape (any shape when o.Shape is nil), or nil when there is none or more
// than one: the likely new name of o after a rename of its Go type.
func renamed(o *Entry, cur []*Entry, keep func(*Entry) bool) *Entry {
	var match *Entry
	for _, e := range cur {
		if !keep(e) || (o.Shape != nil && e.Shape.String() != o.Shape.String()) {
			continue
		}
		if match != nil {
			return nil // ambiguous: suggest nothing
		}
		match = e
	}
	return match
}

func find(es []*Entry, f func(*Entry) bool) *Entry {
	for _, e := range es {
		if f(e) {
			return e
		}
	}
	return nil
}

// change is one difference between a locked and a current struct shape.
type change struct {
	path       []string // wire keys from the top struct
	op         string   // "removed", "renamed", "retyped", "added"
	from, to   string   // types (retyped) or the new key (renamed)
	compatible bool
	pos        model.Pos // the current field, when it exists
}

func (c change) describe(typeName string, upcast bool) string {
	field := "field " + strings.Join(c.path, ".") + " of " + typeName
	switch c.op {
	case "removed":
		if upcast {
			return field + " is missing"
		}
		return field + " was removed"
	case "renamed":
		return fmt.Sprintf("%s was renamed to %s (keep the old wire key with a `msgpack:%q` tag)", field, c.to, c.path[len(c.path)-1])
	}
	if upcast {
		return fmt.Sprintf("%s is %s, but was stored as %s", field, c.to, c.from)
	}
	return fmt.Sprintf("%s changed from %s to %s", field, c.from, c.to)
}

// diffStruct lists the changes from struct shape o to n.
func diffStruct(path []string, o, n *Shape) []change {
	var out []change
	sub := func(k string) []string { return append(append([]string(nil), path...), k) }
	var removed, added []*Field
	for _, of := range o.Fields {
		nf := field(n, of.Key)
		if nf == nil {
			removed = append(removed, of)
			continue
		}
		out = append(out, diffType(sub(of.Key), of.Type, nf.Type, nf.Pos)...)
	}
	for _, nf := range n.Fields {
		if field(o, nf.Key) == nil {
			added = append(added, nf)
		}
	}
	if len(removed) == 1 && len(added) == 1 && removed[0].Type.String() == added[0].Type.String() {
		return append(out, change{path: sub(removed[0].Key), op: "renamed", to: added[0].Key, pos: added[0].Pos})
	}
	for _, f := range removed {
		out = append(out, change{path: sub(f.Key), op: "removed"})
	}
	for _, f := range added {
		out = append(out, change{path: sub(f.Key), op: "added", compatible: true, pos: f.Pos})
	}
	return out
}

func field(s *Shape, key string) *Field {
	for _, f := range s.Fields {
		if f.Key == key {
			return f
		}
	}
	return nil
}

// diffType compares the types of one field.
func diffType(path []string, o, n *Shape, pos model.Pos) []change {
	if o.String() == n.String() {
		return nil
	}
	retyped := []change{{path: path, op: "retyped", from: o.String(), to: n.String(), pos: pos, compatible: widens(o.Kind, n.Kind)}}
	if o.Kind != n.Kind {
		return retyped
	}
	switch o.Kind {
	case "struct":
		return diffStruct(path, o, n)
	case "pointer", "slice":
		return reposition(diffType(path, o.Elem, n.Elem, pos), pos)
	case "array":
		if o.Len != n.Len {
			return retyped
		}
		return reposition(diffType(path, o.Elem, n.Elem, pos), pos)
	case "map":
		if d := diffType(path, o.Key, n.Key, pos); len(d) > 0 {
			return retyped
		}
		return reposition(diffType(path, o.Elem, n.Elem, pos), pos)
	}
	return retyped
}

// reposition gives changes inside an element type without a position of
// their own the field's.
func reposition(cs []change, pos model.Pos) []change {
	for i := range cs {
		if cs[i].pos == (model.Pos{}) {
			cs[i].pos = pos
		}
	}
	return cs
}

// widening lists, per kind, the kinds that read every value it holds
// (runtime/wire decodes any integer encoding into any integer type the
// value fits, float32 into float64, and str and bin interchangeably).
var widening = map[string][]string{
	"int8":    {"int16", "int32", "int64", "int"},
	"int16":   {"int32", "int64", "int"},
	"int32":   {"int64", "int"},
	"int":     {"int64"},
	"uint8":   {"uint16", "uint32", "uint64", "uint", "int16", "int32", "int64", "int"},
	"uint16":  {"uint32", "uint64", "uint", "int32", "int64", "int"},
	"uint32":  {"uint64", "uint", "int64"},
	"uint":    {"uint64"},
	"float32": {"float64"},
	"string":  {"bytes"},
	"bytes":   {"string"},
}

func widens(from, to string) bool {
	for _, k := range widening[from] {
		if k == to {
			return true
		}
	}
	return false
}
