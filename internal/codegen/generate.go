// Package codegen is cqrsgen's generator pipeline: load the packages, parse their
// directives, build the model, validate it, emit the generated files and
// format them. It performs no writes (package write does), so the same
// result serves generation and -check.
package codegen

import (
	"fmt"
	"go/types"
	"regexp"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/directive"
	"github.com/cqrsgen/cqrsgen/internal/codegen/load"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
	"github.com/cqrsgen/cqrsgen/internal/codegen/resolve"
	"github.com/cqrsgen/cqrsgen/internal/codegen/typemap"
	"github.com/cqrsgen/cqrsgen/internal/codegen/validate"
	"github.com/cqrsgen/cqrsgen/internal/codegen/write"
	"github.com/cqrsgen/cqrsgen/templates"
)

// DefaultOutput is the generated file's default base name.
const DefaultOutput = "cqrs_gen.go"

// Config says what to generate.
type Config struct {
	// Dir is the directory patterns are resolved in ("" = current).
	Dir string
	// Patterns are package patterns as for go list.
	Patterns []string
	// Output is the generated file's base name (DefaultOutput when empty).
	Output string
	// Env, when set, replaces the environment the go command runs in.
	Env []string
	// AcceptBreaking accepts changes that cqrs.lock reports as breaking
	// and rewrites the lock (see lock.go).
	AcceptBreaking bool
}

// Problems are positioned problems in the user's packages, sorted by
// position. Generate returns them as its error when there are any.
type Problems []model.Error

func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, e := range p {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Generate runs the pipeline over the packages of cfg and returns the
// formatted outputs: one per package with directives, plus a removal (nil
// Src) for each package that has a generated file but no directives any
// more. If any package has a problem, it returns every problem of every
// package as Problems and no outputs.
func Generate(cfg Config) ([]write.Output, error) {
	if cfg.Output == "" {
		cfg.Output = DefaultOutput
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	pkgs, problems, err := load.Load(load.Config{Dir: cfg.Dir, Patterns: patterns, Output: cfg.Output, Env: cfg.Env})
	if err != nil {
		return nil, err
	}
	var outs []write.Output
	for _, pkg := range pkgs {
		pouts, errs := packageOutputs(pkg, cfg.AcceptBreaking)
		problems = append(problems, errs...)
		outs = append(outs, pouts...)
	}
	if len(problems) > 0 {
		return nil, Problems(validate.Sort(problems))
	}
	if err := write.Format(outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// Package generates the output of one loaded package: nil when it has no
// directives and no generated file, a removal when it has only the
// latter. The output is not formatted yet (Generate formats everything).
func Package(pkg *load.Package) (*write.Output, []model.Error) {
	out, _, errs := packageModel(pkg)
	return out, errs
}

// packageModel is Package, also returning the model it generated from
// (nil when there is none).
func packageModel(pkg *load.Package) (*write.Output, *model.Package, []model.Error) {
	dirs, errs := directive.Parse(pkg.Fset, pkg.Files)
	if len(dirs) == 0 && len(errs) == 0 {
		errs = typeErrors(pkg, &model.Package{}, nil) // report real errors even so
		if pkg.OutputExists && len(errs) == 0 {
			return &write.Output{Path: pkg.Output}, nil, nil
		}
		return nil, nil, errs
	}
	res := typemap.NewResolver(pkg.Types, pkg.Fset)
	mp, berrs := resolve.Build(pkg, dirs, res)
	errs = append(errs, berrs...)
	errs = append(errs, typeErrors(pkg, skeleton(dirs), templates.CodecNames(mp))...)
	sc := scope{pkg}
	errs = append(errs, validate.Check(mp, sc, templates.CodecNames(mp))...)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	src, err := templates.Render(mp)
	if err != nil {
		return nil, nil, []model.Error{{Pos: model.Pos{File: pkg.Output, Line: 1, Col: 1},
			Msg: fmt.Sprintf("generated source does not compile (a cqrsgen bug, please report it): %v", err)}}
	}
	if errs := validate.Imports(src, sc); len(errs) > 0 {
		return nil, nil, errs
	}
	return &write.Output{Path: pkg.Output, Src: src}, mp, nil
}

// skeleton is a model holding only the names the directives declare,
// enough to list the identifiers the generated file will declare even
// when building the full model failed.
func skeleton(dirs []directive.Directive) *model.Package {
	mp := &model.Package{}
	aggs := map[string]*model.Aggregate{}
	for _, d := range dirs {
		if d.Kind == directive.Aggregate && aggs[d.Type] == nil {
			aggs[d.Type] = &model.Aggregate{GoName: d.Type}
			mp.Aggregates = append(mp.Aggregates, aggs[d.Type])
		}
	}
	for _, d := range dirs {
		a := aggs[d.Target]
		switch {
		case a == nil:
		case d.Kind == directive.Event:
			a.Events = append(a.Events, &model.Event{GoName: d.Type})
		case d.Kind == directive.Command:
			a.Commands = append(a.Commands, &model.Command{GoName: d.Type})
		}
		if d.Kind == directive.Projection {
			mp.Projections = append(mp.Projections, &model.Projection{GoName: d.Type})
		}
		if d.Kind == directive.Saga {
			mp.Sagas = append(mp.Sagas, &model.Saga{GoName: d.Type})
		}
	}
	return mp
}

var (
	undefinedRE = regexp.MustCompile(`^undefined: (\w+)$`)
	noMethodRE  = regexp.MustCompile(`undefined \(type \*?(\w+) has no field or method (\w+)\b`)
)

// typeErrors returns the package's type errors except those about
// identifiers the generated file will declare (the skeleton's generated
// names and the codec names): before the first run (and
// while generating, since the generated file is hidden) the user's code
// may refer to them.
func typeErrors(pkg *load.Package, skel *model.Package, codecNames []string) []model.Error {
	names := map[string]bool{}
	for _, n := range codecNames {
		names[n] = true
	}
	methods := map[[2]string]bool{}
	for _, n := range model.GeneratedNames(skel) {
		if n.Recv == "" {
			names[n.Name] = true
		} else {
			methods[[2]string{n.Recv, n.Name}] = true
		}
	}
	var errs []model.Error
	for _, te := range pkg.TypeErrors {
		if m := undefinedRE.FindStringSubmatch(te.Msg); m != nil && names[m[1]] {
			continue
		}
		if m := noMethodRE.FindStringSubmatch(te.Msg); m != nil && methods[[2]string{m[1], m[2]}] {
			continue
		}
		p := te.Fset.Position(te.Pos)
		errs = append(errs, model.Error{Pos: model.Pos{File: p.Filename, Line: p.Line, Col: p.Column}, Msg: te.Msg})
	}
	return errs
}

// scope answers validate's questions from go/types.
type scope struct{ pkg *load.Package }

func (s scope) pos(obj types.Object) model.Pos {
	p := s.pkg.Fset.Position(obj.Pos())
	return model.Pos{File: p.Filename, Line: p.Line, Col: p.Column}
}

func (s scope) Lookup(name string) (model.Pos, bool) {
	obj := s.pkg.Types.Scope().Lookup(name)
	if obj == nil {
		return model.Pos{}, false
	}
	return s.pos(obj), true
}

func (s scope) Member(typeName, name string) (model.Pos, bool) {
	tn, _ := s.pkg.Types.Scope().Lookup(typeName).(*types.TypeName)
	if tn == nil {
		return model.Pos{}, false
	}
	obj, index, _ := types.LookupFieldOrMethod(types.NewPointer(tn.Type()), false, s.pkg.Types, name)
	if obj == nil || len(index) != 1 {
		return model.Pos{}, false // absent, or promoted (shadowing it is legal)
	}
	return s.pos(obj), true
}
