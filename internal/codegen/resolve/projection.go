package resolve

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cqrsgen/cqrsgen/internal/codegen/directive"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// projections builds the model of every //cqrs:projection type: its
// handlers (methods On<Event> declared on *P whose second parameter is a
// runtime.Envelope of a cqrsgen event of this package or an imported one)
// and its optional Reset and Position methods. It runs after the
// package's aggregates and events are in mp.
func (b *builder) projections(mp *model.Package, dirs []directive.Directive) {
	files := map[string]*sourceFile{}
	for _, d := range dirs {
		obj, ok := b.structType(d)
		if !ok {
			continue
		}
		p := &model.Projection{GoName: d.Type, Name: d.Type, Pos: d.TypePos}
		if d.Name != "" {
			p.Name = d.Name
		}
		seen := map[*types.TypeName]*model.Handler{}
		candidates := 0
		for _, fd := range b.declaredMethods(d.Type) {
			if !isHandlerName(fd.Name.Name) {
				continue
			}
			candidates++
			h := b.handler(mp, p, fd, files)
			if h == nil {
				continue
			}
			ev := h.event
			if prev := seen[ev]; prev != nil {
				b.errorf(h.Pos, "%s handles %s, which %s already handles (%s); an event has one handler per projection",
					h.Method, b.typeName(ev.Type()), prev.Method, shortPos(prev.Pos))
				continue
			}
			seen[ev] = &h.Handler
			p.Handlers = append(p.Handlers, &h.Handler)
		}
		if candidates == 0 {
			b.errorf(p.Pos, "projection %s has no handlers: declare at least one method %s", p.GoName, handlerWant(p.GoName, "On<Event>", "<Event>"))
		}
		p.Reset = b.optionalMethod(p.GoName, obj, model.ResetMethod, "(ctx context.Context) error", isResetSig)
		p.Position = b.optionalMethod(p.GoName, obj, model.PositionMethod, "(ctx context.Context) (uint64, error)", isPositionSig)
		mp.Projections = append(mp.Projections, p)
	}
}

// isHandlerName reports whether a method name is a handler's: "On"
// followed by an upper-case letter.
func isHandlerName(name string) bool {
	rest, ok := strings.CutPrefix(name, "On")
	if !ok || rest == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return unicode.IsUpper(r)
}

func handlerWant(recv, method, event string) string {
	return fmt.Sprintf("func (p *%s) %s(ctx context.Context, e runtime.Envelope[%s]) error", recv, method, event)
}

// declaredMethods returns the methods declared in the package's syntax on
// T or *T, in source order.
func (b *builder) declaredMethods(typeName string) []*ast.FuncDecl {
	var out []*ast.FuncDecl
	for _, f := range b.pkg.Files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if ok && fd.Recv != nil && len(fd.Recv.List) == 1 && recvName(fd.Recv.List[0].Type) == typeName {
				out = append(out, fd)
			}
		}
	}
	return out
}

// typeName renders t qualified by package name outside this package.
func (b *builder) typeName(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == b.pkg.Types {
			return ""
		}
		return p.Name()
	})
}

type resolvedHandler struct {
	model.Handler
	event *types.TypeName
}

// handler checks one On… method of projection p and resolves the event it
// consumes. It reports problems and returns nil for a method in error.
func (b *builder) handler(mp *model.Package, p *model.Projection, fd *ast.FuncDecl, files map[string]*sourceFile) *resolvedHandler {
	name := fd.Name.Name
	pos := b.pos(fd.Name.Pos())
	fn, _ := b.pkg.Info.Defs[fd.Name].(*types.Func)
	if fn == nil {
		return nil // the type checker reported it
	}
	sig := fn.Type().(*types.Signature)
	_, ptr := sig.Recv().Type().(*types.Pointer)
	ok := ptr && sig.Params().Len() == 2 && !sig.Variadic() &&
		isNamed(sig.Params().At(0).Type(), "context", "Context") && returnsError(sig)
	arg, event, argOK := b.onEventArg(name, sig)
	ok = ok && argOK
	if !ok {
		b.errorf(pos, "%s has the wrong signature: want %s, have %s", name, handlerWant(p.GoName, name, event), b.describe(fd))
		return nil
	}
	argPos := pos
	if params := fd.Type.Params.List; len(params) > 0 {
		argPos = b.pos(params[len(params)-1].Type.Pos())
	}
	named, _ := arg.(*types.Named)
	if named == nil || named.Obj().Pkg() == nil || named.TypeArgs().Len() > 0 {
		b.errorf(argPos, "%s handles %s, which is not an event: want runtime.Envelope[E] where E has a %sevent directive", name, b.typeName(arg), directive.Prefix)
		return nil
	}
	ev := named.Obj()
	ref, why := b.eventRef(mp, ev, files)
	if why != "" {
		b.errorf(argPos, "%s handles %s, which is not an event: %s", name, b.typeName(arg), why)
		return nil
	}
	return &resolvedHandler{Handler: model.Handler{Method: name, Event: ref, Pos: pos}, event: ev}
}

// eventRef resolves an event type of this package (from the model being
// built) or of an imported one (from the functions its generated file
// declares). why explains a type that is not an event.
func (b *builder) eventRef(mp *model.Package, ev *types.TypeName, files map[string]*sourceFile) (ref model.EventRef, why string) {
	pkg := ev.Pkg()
	ref = model.EventRef{PkgPath: pkg.Path(), PkgName: pkg.Name(), GoName: ev.Name()}
	if pkg == b.pkg.Types {
		for _, a := range mp.Aggregates {
			for _, e := range a.Events {
				if e.GoName == ev.Name() {
					ref.Aggregate = a.GoName
					return ref, ""
				}
			}
		}
		return ref, fmt.Sprintf("annotate %s %sevent <Aggregate>", ev.Name(), directive.Prefix)
	}
	if agg, ok := b.sourceEvent(ev, files); ok {
		ref.Aggregate = agg
		return ref, ""
	}
	if agg, ok := b.importedEvent(ev); ok {
		ref.Aggregate = agg
		return ref, ""
	}
	return ref, fmt.Sprintf("it has no %sevent directive in package %s, which declares no generated event table for it either",
		directive.Prefix, pkg.Path())
}

// sourceFile is the parsed directives of one file of an imported package.
type sourceFile struct {
	dirs []directive.Directive
}

// sourceEvent recognises an event of another package by its directive: the
// //cqrs:event A line above its declaration, read from the file the type
// checker says declares it. It is what the package's generated file will
// declare an event table for, whether or not that file is
// current (or, when several packages are generated in one run, visible),
// so the output does not depend on the order packages are generated in.
func (b *builder) sourceEvent(ev *types.TypeName, files map[string]*sourceFile) (aggregate string, ok bool) {
	name := b.pkg.Fset.Position(ev.Pos()).Filename
	if name == "" {
		return "", false
	}
	sf := files[name]
	if sf == nil {
		sf = &sourceFile{}
		files[name] = sf
		fset := token.NewFileSet()
		if f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution); err == nil {
			sf.dirs, _ = directive.Parse(fset, []*ast.File{f})
		}
	}
	for _, d := range sf.dirs {
		if d.Type == ev.Name() && d.Kind == directive.Event && d.Target != "" {
			return d.Target, true
		}
	}
	return "", false
}

// importedEvent recognises a cqrsgen event of another package whose source
// cannot be read (sourceEvent) by what its generated file declares: the
// sealing method is<A>Event of its aggregate A, whose <A>StreamType
// constant and <A>Events table function exist.
func (b *builder) importedEvent(ev *types.TypeName) (aggregate string, ok bool) {
	scope := ev.Pkg().Scope()
	named, _ := ev.Type().(*types.Named)
	if named == nil {
		return "", false
	}
	for i := range named.NumMethods() {
		m := named.Method(i).Name()
		agg, found := strings.CutPrefix(m, "is")
		agg, found2 := strings.CutSuffix(agg, "Event")
		if !found || !found2 || agg == "" {
			continue
		}
		c, _ := scope.Lookup(model.StreamTypeConstOf(agg)).(*types.Const)
		fn, _ := scope.Lookup(model.EventsFuncOf(agg)).(*types.Func)
		if c != nil && fn != nil {
			return agg, true
		}
	}
	return "", false
}

// envelopeArg returns E when t is runtime.Envelope[E].
func envelopeArg(t types.Type) types.Type {
	n, _ := t.(*types.Named)
	if n == nil || n.TypeArgs().Len() != 1 {
		return nil
	}
	o := n.Origin().Obj()
	if o.Pkg() == nil || o.Pkg().Path() != model.RuntimePath || o.Name() != "Envelope" {
		return nil
	}
	return n.TypeArgs().At(0)
}

// onEventArg reads the event of an On<Event> method from its second
// parameter, runtime.Envelope[E]: the argument type (a pointer's element,
// so that messages can name it), the event's name for messages (the method
// name's suffix when the parameter is not an envelope of a named type), and
// whether the parameter has the required shape (an envelope of a value).
func (b *builder) onEventArg(name string, sig *types.Signature) (arg types.Type, event string, ok bool) {
	event = strings.TrimPrefix(name, "On")
	if sig.Params().Len() < 2 {
		return nil, event, true // the caller's arity check reports it
	}
	if arg = envelopeArg(sig.Params().At(1).Type()); arg == nil {
		return nil, event, false
	}
	ok = true
	if ptrArg, isPtr := arg.(*types.Pointer); isPtr {
		arg, ok = ptrArg.Elem(), false // events travel as values
	}
	if _, named := arg.(*types.Named); named {
		event = b.typeName(arg)
	}
	return arg, event, ok
}

func isNamed(t types.Type, pkgPath, name string) bool {
	n, _ := t.(*types.Named)
	if n == nil {
		return false
	}
	o := n.Obj()
	return o.Pkg() != nil && o.Pkg().Path() == pkgPath && o.Name() == name
}

func isResetSig(sig *types.Signature) bool {
	return sig.Params().Len() == 1 && !sig.Variadic() && isNamed(sig.Params().At(0).Type(), "context", "Context") &&
		sig.Results().Len() == 1 && types.Identical(sig.Results().At(0).Type(), types.Universe.Lookup("error").Type())
}

func isPositionSig(sig *types.Signature) bool {
	return sig.Params().Len() == 1 && !sig.Variadic() && isNamed(sig.Params().At(0).Type(), "context", "Context") &&
		sig.Results().Len() == 2 && types.Identical(sig.Results().At(0).Type(), types.Typ[types.Uint64]) &&
		types.Identical(sig.Results().At(1).Type(), types.Universe.Lookup("error").Type())
}

// optionalMethod reports whether *P has method name with the wanted
// signature; one of the name that is not such a method is an error.
func (b *builder) optionalMethod(recv string, obj *types.TypeName, name, sigText string, good func(*types.Signature) bool) bool {
	m, _, _ := types.LookupFieldOrMethod(types.NewPointer(obj.Type()), false, b.pkg.Types, name)
	if m == nil {
		return false
	}
	want := fmt.Sprintf("func (p *%s) %s%s", recv, name, sigText)
	fn, isFunc := m.(*types.Func)
	if !isFunc {
		b.errorf(b.pos(m.Pos()), "%s of projection %s must be a method: %s (or rename it)", name, recv, want)
		return false
	}
	if !good(fn.Type().(*types.Signature)) {
		have := "func " + strings.TrimPrefix(types.ObjectString(fn, func(p *types.Package) string {
			if p == b.pkg.Types {
				return ""
			}
			return p.Name()
		}), "func ")
		if fd := b.methods[[2]string{recv, name}]; fd != nil {
			have = b.describe(fd)
		}
		b.errorf(b.pos(m.Pos()), "%s of projection %s has the wrong signature: want %s, have %s (or rename it)", name, recv, want, have)
		return false
	}
	return true
}
