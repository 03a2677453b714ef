// Package validate checks a built model for problems that are about the
// package as a whole rather than one declaration: aggregates without
// events, clashing wire names, and user identifiers that collide with the
// identifiers the generated file declares. It is pure: the user's
// declarations come in through a Scope.
package validate

import (
	"fmt"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Scope answers questions about the user's declarations.
type Scope interface {
	// Lookup returns where the user declared the package-level
	// identifier name, if they did.
	Lookup(name string) (model.Pos, bool)
	// Member returns where the user declared a field or method name of
	// the package-level type typeName, if they did.
	Member(typeName, name string) (model.Pos, bool)
}

// Check returns every problem of pkg, in no particular order. codecNames
// are the package-level identifiers the codec emitter declares.
func Check(pkg *model.Package, scope Scope, codecNames []string) []model.Error {
	var errs []model.Error
	errorf := func(pos model.Pos, format string, args ...any) {
		errs = append(errs, model.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
	}
	streams := map[string]*model.Aggregate{}
	for _, a := range pkg.Aggregates {
		if len(a.Events) == 0 {
			errorf(a.Pos, "aggregate %s has no events: annotate at least one struct type //cqrs:event %s", a.GoName, a.GoName)
		}
		if prev := streams[a.WireName]; prev != nil {
			errorf(a.Pos, "aggregate %s has stream type name %q, already used by aggregate %s (%s)", a.GoName, a.WireName, prev.GoName, short(prev.Pos))
		} else {
			streams[a.WireName] = a
		}
		names := map[string]*model.Event{}
		for _, e := range a.Events {
			if prev := names[e.WireName]; prev != nil {
				errorf(e.Pos, "event %s has wire name %q, already used by event %s of aggregate %s (%s)", e.GoName, e.WireName, prev.GoName, a.GoName, short(prev.Pos))
				continue
			}
			names[e.WireName] = e
		}
	}

	errs = append(errs, checkProjections(pkg)...)
	errs = append(errs, checkSagas(pkg)...)
	errs = append(errs, checkPII(pkg)...)

	// Generated identifiers against each other and against the user's.
	generated := model.GeneratedNames(pkg)
	seen := map[[2]string]model.Name{}
	for _, n := range generated {
		key := [2]string{n.Recv, n.Name}
		if prev, dup := seen[key]; dup {
			errorf(n.For, "cqrsgen would declare %s twice (also for the declaration at %s); rename one of the types", qualified(n), short(prev.For))
			continue
		}
		seen[key] = n
		if n.Recv == "" {
			if pos, ok := scope.Lookup(n.Name); ok {
				errorf(pos, "%s collides with an identifier cqrsgen generates (for the declaration at %s); rename it", n.Name, short(n.For))
			}
			continue
		}
		if pos, ok := scope.Member(n.Recv, n.Name); ok {
			errorf(pos, "%s collides with a method cqrsgen generates (for the declaration at %s); rename it", qualified(n), short(n.For))
		}
	}
	for _, name := range codecNames {
		if prev, dup := seen[[2]string{"", name}]; dup {
			errorf(prev.For, "cqrsgen would declare %s twice (also as a codec function); rename the type", name)
		}
		if pos, ok := scope.Lookup(name); ok {
			errorf(pos, "%s collides with a codec function cqrsgen generates; rename it", name)
		}
	}
	return errs
}

// Imports checks that no package-level identifier of the user's shadows a
// package the generated source imports (which would not compile).
func Imports(src []byte, scope Scope) []model.Error {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.ImportsOnly)
	if err != nil {
		return nil // the writer reports unparsable output
	}
	var errs []model.Error
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if pos, ok := scope.Lookup(name); ok {
			errs = append(errs, model.Error{Pos: pos, Msg: fmt.Sprintf("%s collides with the name of package %q, which the generated file imports; rename it", name, path)})
		}
	}
	return errs
}

func qualified(n model.Name) string {
	if n.Recv == "" {
		return n.Name
	}
	return n.Recv + "." + n.Name
}

func short(p model.Pos) string {
	file := p.File
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		file = file[i+1:]
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// Sort sorts problems by position then message and drops exact
// duplicates.
func Sort(errs []model.Error) []model.Error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
	out := errs[:0]
	for _, e := range errs {
		if len(out) > 0 && e == out[len(out)-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}
