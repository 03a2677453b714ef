// Package resolve turns a loaded package and its parsed directives into the
// plain model the emitters consume. It resolves every annotated type,
// checks that it is an exported struct, finds the Apply<Event> and
// Handle<Command> methods the generated dispatch calls and checks their
// signatures. Every problem is collected; none stops the build.
package resolve

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/directive"
	"github.com/cqrsgen/cqrsgen/internal/codegen/load"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
	"github.com/cqrsgen/cqrsgen/internal/suggest"
)

// Resolver maps struct types to model structs (package typemap implements
// it), collecting unsupported field types as errors.
type Resolver interface {
	Struct(obj *types.TypeName) *model.Struct
	Structs() []*model.Struct
	Errors() []model.Error
}

// Build builds the model of pkg from its directives. The model is complete
// enough to emit and validate even when errors are returned.
func Build(pkg *load.Package, dirs []directive.Directive, res Resolver) (*model.Package, []model.Error) {
	b := &builder{pkg: pkg, res: res, methods: map[[2]string]*ast.FuncDecl{}}
	for _, f := range pkg.Files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			if recv := recvName(fd.Recv.List[0].Type); recv != "" {
				b.methods[[2]string{recv, fd.Name.Name}] = fd
			}
		}
	}
	mp := &model.Package{Path: pkg.Path, Name: pkg.Name, Dir: pkg.Dir}
	aggs := map[string]*model.Aggregate{}
	first := map[string]directive.Directive{}
	var rest, projections, upcasts, sagas, retired []directive.Directive
	for _, d := range dirs {
		if d.Kind == directive.Retired {
			retired = append(retired, d) // beside //cqrs:aggregate: not a second annotation
			continue
		}
		if prev, dup := first[d.Type]; dup {
			b.errorf(d.Pos, "%s is annotated twice: it already has %s%s at %s", d.Type, directive.Prefix, prev.Kind, shortPos(prev.Pos))
			continue
		}
		first[d.Type] = d
		if d.Kind == directive.Upcast {
			upcasts = append(upcasts, d)
			continue
		}
		if d.Kind == directive.Projection {
			projections = append(projections, d)
			continue
		}
		if d.Kind == directive.Saga {
			sagas = append(sagas, d)
			continue
		}
		if d.Kind != directive.Aggregate {
			rest = append(rest, d)
			continue
		}
		obj, ok := b.structType(d)
		if !ok {
			continue
		}
		a := &model.Aggregate{GoName: d.Type, WireName: d.Type, SnapshotEvery: d.Snapshot, Pos: d.TypePos}
		if d.Name != "" {
			a.WireName = d.Name
		}
		a.State = res.Struct(obj)
		aggs[d.Type] = a
		mp.Aggregates = append(mp.Aggregates, a)
	}
	for _, d := range rest {
		a := b.target(d, aggs, first)
		obj, ok := b.structType(d)
		if !ok || a == nil {
			continue
		}
		switch d.Kind {
		case directive.Event:
			e := &model.Event{GoName: d.Type, WireName: d.Type, Version: 1, Pos: d.TypePos}
			if d.Name != "" {
				e.WireName = d.Name
			}
			if d.Version != 0 {
				e.Version = d.Version
			}
			e.Struct = res.Struct(obj)
			b.checkApply(a, obj)
			a.Events = append(a.Events, e)
		case directive.Command:
			c := &model.Command{GoName: d.Type, Pos: d.TypePos}
			c.PointerReceiver = b.checkHandle(a, obj)
			a.Commands = append(a.Commands, c)
		}
	}
	for _, a := range mp.Aggregates {
		for _, c := range a.Commands {
			if fd := b.methods[[2]string{a.GoName, "Handle" + c.GoName}]; fd != nil && fd.Body != nil {
				b.checkPointerEvents(a, fd)
			}
		}
	}
	b.projections(mp, projections)
	b.sagas(mp, sagas)
	b.upcasts(mp, upcasts, first)
	b.retired(retired, aggs, first)
	mp.Structs = res.Structs()
	b.errs = append(b.errs, res.Errors()...)
	return mp, b.errs
}

type builder struct {
	pkg     *load.Package
	res     Resolver
	methods map[[2]string]*ast.FuncDecl // (receiver type, method) → decl
	errs    []model.Error
}

func (b *builder) errorf(pos model.Pos, format string, args ...any) {
	b.errs = append(b.errs, model.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) pos(p token.Pos) model.Pos {
	position := b.pkg.Fset.Position(p)
	return model.Pos{File: position.Filename, Line: position.Line, Col: position.Column}
}

// shortPos formats a position for use inside a message: base file name,
// line and column.
func shortPos(p model.Pos) string {
	file := p.File
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		file = file[i+1:]
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

func recvName(x ast.Expr) string {
	if star, ok := x.(*ast.StarExpr); ok {
		x = star.X
	}
	switch x := x.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.IndexExpr:
		return recvName(x.X)
	case *ast.IndexListExpr:
		return recvName(x.X)
	}
	return ""
}

// structType resolves an annotated type and checks that it is an
// exported, non-generic, defined struct type.
func (b *builder) structType(d directive.Directive) (*types.TypeName, bool) {
	obj, _ := b.pkg.Types.Scope().Lookup(d.Type).(*types.TypeName)
	if obj == nil {
		// Annotated types are always declared at package level; a type
		// declared inside a function never gets here (the directive is
		// reported as misplaced).
		b.errorf(d.TypePos, "%s%s on %s: not a package-level type", directive.Prefix, d.Kind, d.Type)
		return nil, false
	}
	ok := true
	if !ast.IsExported(d.Type) {
		b.errorf(d.TypePos, "%s%s type %s must be exported (generated code and its users refer to it)", directive.Prefix, d.Kind, d.Type)
		ok = false
	}
	if obj.IsAlias() {
		b.errorf(d.TypePos, "%s%s type %s must be a defined struct type, not an alias", directive.Prefix, d.Kind, d.Type)
		return obj, false
	}
	named, _ := obj.Type().(*types.Named)
	if named == nil {
		return obj, false
	}
	if named.TypeParams().Len() > 0 {
		b.errorf(d.TypePos, "%s%s type %s must not be generic", directive.Prefix, d.Kind, d.Type)
		ok = false
	}
	if _, isStruct := named.Underlying().(*types.Struct); !isStruct {
		b.errorf(d.TypePos, "%s%s type %s must be a struct type, not %s", directive.Prefix, d.Kind, d.Type,
			types.TypeString(named.Underlying(), types.RelativeTo(b.pkg.Types)))
		ok = false
	}
	return obj, ok
}

// target resolves the aggregate an event or command names.
func (b *builder) target(d directive.Directive, aggs map[string]*model.Aggregate, first map[string]directive.Directive) *model.Aggregate {
	if a := aggs[d.Target]; a != nil {
		return a
	}
	if prev, ok := first[d.Target]; ok && prev.Kind == directive.Aggregate {
		return nil // the aggregate itself is in error; reported there
	}
	what := "there is no type " + d.Target + " in this package"
	if obj, ok := b.pkg.Types.Scope().Lookup(d.Target).(*types.TypeName); ok && obj != nil {
		what = "type " + d.Target + " has no " + directive.Prefix + "aggregate directive"
	} else {
		names := make([]string, 0, len(aggs))
		for _, dd := range first {
			if dd.Kind == directive.Aggregate {
				names = append(names, dd.Type)
			}
		}
		slices.Sort(names) // first is a map: keep the suggestion deterministic
		if guess := suggest.Closest(d.Target, names); guess != "" {
			what += "; did you mean " + guess + "?"
		}
	}
	b.errorf(d.Pos, "%s %s names aggregate %s, but %s", d.Kind, d.Type, d.Target, what)
	return nil
}

// lookupMethod finds method name on *A. It returns the declaration when
// the method is declared in this package's syntax, and the object found
// (a method, or a field of the same name).
func (b *builder) lookupMethod(a *model.Aggregate, name string) (types.Object, *ast.FuncDecl) {
	aobj, _ := b.pkg.Types.Scope().Lookup(a.GoName).(*types.TypeName)
	if aobj == nil {
		return nil, nil
	}
	obj, _, _ := types.LookupFieldOrMethod(types.NewPointer(aobj.Type()), false, b.pkg.Types, name)
	return obj, b.methods[[2]string{a.GoName, name}]
}

// checkApply checks func (a *A) Apply<E>(e E).
func (b *builder) checkApply(a *model.Aggregate, ev *types.TypeName) {
	name := "Apply" + ev.Name()
	want := fmt.Sprintf("func (a *%s) %s(e %s)", a.GoName, name, ev.Name())
	obj, fd := b.lookupMethod(a, name)
	fn, isFunc := obj.(*types.Func)
	switch {
	case obj == nil:
		b.errorf(b.pos(ev.Pos()), "event %s of aggregate %s needs a method %s", ev.Name(), a.GoName, want)
		return
	case !isFunc || fd == nil:
		b.errorf(b.pos(obj.Pos()), "%s must be a method declared on *%s: %s", name, a.GoName, want)
		return
	}
	sig := fn.Type().(*types.Signature)
	ok := sig.Params().Len() == 1 && !sig.Variadic() && sig.Results().Len() == 0 &&
		types.Identical(sig.Params().At(0).Type(), ev.Type())
	if _, ptr := sig.Recv().Type().(*types.Pointer); !ptr {
		ok = false
	}
	if !ok {
		b.errorf(b.pos(fd.Name.Pos()), "%s has the wrong signature: want %s, have %s", name, want, b.describe(fd))
	}
}

// checkHandle checks func (a A|*A) Handle<C>(c C) ([]AEvent, error) and
// reports whether the receiver is a pointer. AEvent is generated, so it
// does not exist while the generator runs: the result type is checked in
// the syntax.
func (b *builder) checkHandle(a *model.Aggregate, cmd *types.TypeName) bool {
	name := "Handle" + cmd.Name()
	evs := model.EventInterface(a)
	want := fmt.Sprintf("func (a *%s) %s(c %s) ([]%s, error)", a.GoName, name, cmd.Name(), evs)
	obj, fd := b.lookupMethod(a, name)
	fn, isFunc := obj.(*types.Func)
	switch {
	case obj == nil:
		b.errorf(b.pos(cmd.Pos()), "command %s of aggregate %s needs a method %s", cmd.Name(), a.GoName, want)
		return false
	case !isFunc || fd == nil:
		b.errorf(b.pos(obj.Pos()), "%s must be a method declared on %s or *%s: %s", name, a.GoName, a.GoName, want)
		return false
	}
	sig := fn.Type().(*types.Signature)
	_, ptr := sig.Recv().Type().(*types.Pointer)
	ok := sig.Params().Len() == 1 && !sig.Variadic() && types.Identical(sig.Params().At(0).Type(), cmd.Type())
	var results []ast.Expr
	if fd.Type.Results != nil {
		for _, f := range fd.Type.Results.List {
			n := max(len(f.Names), 1)
			for range n {
				results = append(results, f.Type)
			}
		}
	}
	if len(results) != 2 || !isSliceOf(results[0], evs) || sig.Results().Len() != 2 ||
		!types.Identical(sig.Results().At(1).Type(), types.Universe.Lookup("error").Type()) {
		ok = false
	}
	if !ok {
		b.errorf(b.pos(fd.Name.Pos()), "%s has the wrong signature: want %s, have %s", name, want, b.describe(fd))
	}
	return ptr
}

// checkPointerEvents reports every &E{…} of an event E of a that the Handle
// method fd puts among the events it returns, where the syntax shows it: an
// element of a []AEvent literal, or an element appended to a slice that is
// not one of pointers. The runtime takes a pointer as its value, but the
// pinned contract is that events travel as values, and a person who wrote
// &E{…} may mean something else; the fix is one character.
func (b *builder) checkPointerEvents(a *model.Aggregate, fd *ast.FuncDecl) {
	events := map[string]bool{}
	for _, e := range a.Events {
		events[e.GoName] = true
	}
	evs := model.EventInterface(a)
	check := func(x ast.Expr) {
		u, ok := ast.Unparen(x).(*ast.UnaryExpr)
		if !ok || u.Op != token.AND {
			return
		}
		lit, ok := ast.Unparen(u.X).(*ast.CompositeLit)
		if !ok {
			return
		}
		if id, ok := lit.Type.(*ast.Ident); ok && events[id.Name] {
			b.errorf(b.pos(u.Pos()), "%s returns &%s{…}, a pointer: events are values (write %s{…}); "+
				"a pointer would be taken as its value, a nil one refused", fd.Name.Name, id.Name, id.Name)
		}
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if isSliceOf(n.Type, evs) {
				for _, elt := range n.Elts {
					if kv, ok := elt.(*ast.KeyValueExpr); ok {
						elt = kv.Value
					}
					check(elt)
				}
			}
		case *ast.CallExpr:
			id, ok := n.Fun.(*ast.Ident)
			if !ok || id.Name != "append" || len(n.Args) < 2 || n.Ellipsis.IsValid() {
				break
			}
			if _, builtin := b.pkg.Info.Uses[id].(*types.Builtin); !builtin {
				break
			}
			if sl, ok := b.pkg.Info.TypeOf(n.Args[0]).(*types.Slice); ok {
				if _, ptrs := sl.Elem().Underlying().(*types.Pointer); ptrs {
					break
				}
			}
			for _, arg := range n.Args[1:] {
				check(arg)
			}
		}
		return true
	})
}

func isSliceOf(x ast.Expr, elem string) bool {
	if p, ok := x.(*ast.ParenExpr); ok {
		return isSliceOf(p.X, elem)
	}
	arr, ok := x.(*ast.ArrayType)
	if !ok || arr.Len != nil {
		return false
	}
	id, ok := arr.Elt.(*ast.Ident)
	return ok && id.Name == elem
}

// describe renders a method's signature from its syntax, the way the
// user wrote it (types may be invalid before the first run).
func (b *builder) describe(fd *ast.FuncDecl) string {
	var sb strings.Builder
	sb.WriteString("func (")
	if len(fd.Recv.List[0].Names) > 0 {
		sb.WriteString(fd.Recv.List[0].Names[0].Name + " ")
	}
	sb.WriteString(b.expr(fd.Recv.List[0].Type))
	sb.WriteString(") " + fd.Name.Name + "(")
	sb.WriteString(b.fields(fd.Type.Params))
	sb.WriteString(")")
	if res := fd.Type.Results; res != nil && len(res.List) > 0 {
		r := b.fields(res)
		if len(res.List) == 1 && len(res.List[0].Names) == 0 {
			sb.WriteString(" " + r)
		} else {
			sb.WriteString(" (" + r + ")")
		}
	}
	return sb.String()
}

func (b *builder) fields(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	var parts []string
	for _, f := range fl.List {
		t := b.expr(f.Type)
		if len(f.Names) == 0 {
			parts = append(parts, t)
			continue
		}
		var names []string
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
		parts = append(parts, strings.Join(names, ", ")+" "+t)
	}
	return strings.Join(parts, ", ")
}

func (b *builder) expr(x ast.Expr) string {
	return types.ExprString(x)
}

// retired attaches the //cqrs:retired forms to their aggregates. A form
// must be one no current event or upcaster reads (else it is not retired),
// listed once, and the directive must sit on an aggregate's type.
func (b *builder) retired(dirs []directive.Directive, aggs map[string]*model.Aggregate, first map[string]directive.Directive) {
	for _, d := range dirs {
		a := aggs[d.Type]
		if a == nil {
			if prev, ok := first[d.Type]; ok && prev.Kind == directive.Aggregate {
				continue // the aggregate itself is in error; reported there
			}
			b.errorf(d.Pos, "%s%s on %s: it belongs beside %saggregate, on the aggregate's type", directive.Prefix, directive.Retired, d.Type, directive.Prefix)
			continue
		}
		for _, r := range d.Retired {
			ident := fmt.Sprintf("%s@%d", r.WireName, r.Version)
			if slices.ContainsFunc(a.Retired, func(o model.Retired) bool { return o.WireName == r.WireName && o.Version == r.Version }) {
				b.errorf(r.Pos, "%s is retired twice on %s", ident, a.GoName)
				continue
			}
			if e := readerOf(a, r.WireName); e != nil {
				b.errorf(r.Pos, "%s cannot be retired: event %s reads the wire name %s; retire only a name no event or upcaster reads (an older version of a current event takes a //cqrs:upcast)", ident, e.GoName, r.WireName)
				continue
			}
			a.Retired = append(a.Retired, r)
		}
	}
}

// readerOf returns the event of a that reads the wire name (as its own or
// a former name), or nil.
func readerOf(a *model.Aggregate, name string) *model.Event {
	for _, e := range a.Events {
		if e.WireName == name || slices.Contains(e.FormerNames, name) {
			return e
		}
	}
	return nil
}
