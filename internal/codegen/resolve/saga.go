package resolve

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/directive"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// sagas builds the model of every //cqrs:saga type: its reactions
// (On<Event> methods on *S taking a runtime.Envelope of a cqrsgen event and
// a *saga.Actions), the correlation rule of each (Correlate<Event>
// on S), its optional OnDeadline, and the aggregates the package sends
// commands to (the static types of the commands passed to
// saga.Actions.Send and saga.Send.Compensate anywhere in the package). It
// runs after the package's aggregates and events are in mp.
func (b *builder) sagas(mp *model.Package, dirs []directive.Directive) {
	if len(dirs) == 0 {
		return
	}
	files := map[string]*sourceFile{}
	targets := b.sagaTargets(mp, files)
	for _, d := range dirs {
		obj, ok := b.structType(d)
		if !ok {
			continue
		}
		s := &model.Saga{GoName: d.Type, Name: d.Type, Version: max(d.Version, 1), Pos: d.TypePos, Targets: targets}
		if d.Name != "" {
			s.Name = d.Name
		}
		s.State = b.res.Struct(obj)
		seen := map[*types.TypeName]*model.Reaction{}
		correlates := map[string]*ast.FuncDecl{}
		methods := b.declaredMethods(d.Type)
		for _, fd := range methods {
			if strings.HasPrefix(fd.Name.Name, model.CorrelatePrefix) {
				correlates[fd.Name.Name] = fd
			}
		}
		used := map[string]bool{}
		for _, fd := range methods {
			if !isHandlerName(fd.Name.Name) {
				continue
			}
			if fd.Name.Name == model.DeadlineMethod && b.isDeadlineHandler(fd) {
				s.Deadline = b.checkDeadline(s, fd)
				continue
			}
			r, ev := b.reaction(mp, s, fd, correlates, files)
			if r == nil {
				continue
			}
			used[r.Correlate] = true
			if prev := seen[ev]; prev != nil {
				b.errorf(r.Pos, "%s reacts to %s, which %s already reacts to (%s); an event has one reaction per saga",
					r.Method, b.typeName(ev.Type()), prev.Method, shortPos(prev.Pos))
				continue
			}
			seen[ev] = r
			s.Reactions = append(s.Reactions, r)
		}
		for _, fd := range methods {
			name := fd.Name.Name
			if correlates[name] == fd && !used[name] && b.pkg.Info.Defs[fd.Name] != nil {
				event := strings.TrimPrefix(name, model.CorrelatePrefix)
				if !b.reactionExists(methods, "On"+event) {
					b.errorf(b.pos(fd.Name.Pos()), "%s is the correlation rule of no reaction: saga %s has no method On%s", name, s.GoName, event)
				}
			}
		}
		if len(s.Reactions) == 0 && !b.anyReaction(methods) {
			b.errorf(s.Pos, "saga %s reacts to no events: declare at least one method %s and its correlation rule %s",
				s.GoName, reactionWant(s.GoName, "On<Event>", "<Event>"), correlateWant(s.GoName, "Correlate<Event>", "<Event>"))
		}
		mp.Sagas = append(mp.Sagas, s)
	}
}

func (b *builder) reactionExists(methods []*ast.FuncDecl, name string) bool {
	for _, fd := range methods {
		if fd.Name.Name == name {
			return true
		}
	}
	return false
}

func (b *builder) anyReaction(methods []*ast.FuncDecl) bool {
	for _, fd := range methods {
		if isHandlerName(fd.Name.Name) && !(fd.Name.Name == model.DeadlineMethod && b.isDeadlineHandler(fd)) {
			return true
		}
	}
	return false
}

func reactionWant(recv, method, event string) string {
	return fmt.Sprintf("func (s *%s) %s(ctx context.Context, e runtime.Envelope[%s], do *saga.Actions) error", recv, method, event)
}

func correlateWant(recv, method, event string) string {
	return fmt.Sprintf("func (%s) %s(e runtime.Envelope[%s]) (instance string, ok bool)", recv, method, event)
}

const deadlineWant = "(ctx context.Context, d saga.Deadline, do *saga.Actions) error"

// isDeadlineHandler reports whether an OnDeadline method takes a
// saga.Deadline (rather than reacting to an event named Deadline).
func (b *builder) isDeadlineHandler(fd *ast.FuncDecl) bool {
	fn, _ := b.pkg.Info.Defs[fd.Name].(*types.Func)
	if fn == nil {
		return true
	}
	sig := fn.Type().(*types.Signature)
	return sig.Params().Len() < 2 || envelopeArg(sig.Params().At(1).Type()) == nil
}

// checkDeadline checks func (s *S) OnDeadline(ctx, d saga.Deadline,
// do *saga.Actions) error.
func (b *builder) checkDeadline(s *model.Saga, fd *ast.FuncDecl) bool {
	fn, _ := b.pkg.Info.Defs[fd.Name].(*types.Func)
	if fn == nil {
		return false
	}
	sig := fn.Type().(*types.Signature)
	_, ptr := sig.Recv().Type().(*types.Pointer)
	ok := ptr && sig.Params().Len() == 3 && !sig.Variadic() &&
		isNamed(sig.Params().At(0).Type(), "context", "Context") &&
		isNamed(sig.Params().At(1).Type(), model.SagaPath, "Deadline") &&
		isSagaActions(sig.Params().At(2).Type()) && returnsError(sig)
	if !ok {
		b.errorf(b.pos(fd.Name.Pos()), "%s has the wrong signature: want func (s *%s) %s%s, have %s",
			fd.Name.Name, s.GoName, fd.Name.Name, deadlineWant, b.describe(fd))
	}
	return ok
}

func isSagaActions(t types.Type) bool {
	p, ok := t.(*types.Pointer)
	return ok && isNamed(p.Elem(), model.SagaPath, "Actions")
}

func returnsError(sig *types.Signature) bool {
	return sig.Results().Len() == 1 && types.Identical(sig.Results().At(0).Type(), types.Universe.Lookup("error").Type())
}

// reaction checks one On<Event> method of saga s and its correlation rule
// and resolves the event. It reports problems and returns nil for a method
// in error.
func (b *builder) reaction(mp *model.Package, s *model.Saga, fd *ast.FuncDecl, correlates map[string]*ast.FuncDecl, files map[string]*sourceFile) (*model.Reaction, *types.TypeName) {
	name := fd.Name.Name
	pos := b.pos(fd.Name.Pos())
	fn, _ := b.pkg.Info.Defs[fd.Name].(*types.Func)
	if fn == nil {
		return nil, nil // the type checker reported it
	}
	sig := fn.Type().(*types.Signature)
	_, ptr := sig.Recv().Type().(*types.Pointer)
	ok := ptr && sig.Params().Len() == 3 && !sig.Variadic() &&
		isNamed(sig.Params().At(0).Type(), "context", "Context") &&
		isSagaActions(sig.Params().At(2).Type()) && returnsError(sig)
	arg, event, argOK := b.onEventArg(name, sig)
	ok = ok && argOK
	if !ok {
		b.errorf(pos, "%s has the wrong signature: want %s, have %s", name, reactionWant(s.GoName, name, event), b.describe(fd))
		return nil, nil
	}
	argPos := b.pos(fd.Type.Params.List[min(1, len(fd.Type.Params.List)-1)].Type.Pos())
	named, _ := arg.(*types.Named)
	if named == nil || named.Obj().Pkg() == nil || named.TypeArgs().Len() > 0 {
		b.errorf(argPos, "%s reacts to %s, which is not an event: want runtime.Envelope[E] where E has a %sevent directive", name, b.typeName(arg), directive.Prefix)
		return nil, nil
	}
	ev := named.Obj()
	ref, why := b.eventRef(mp, ev, files)
	if why != "" {
		b.errorf(argPos, "%s reacts to %s, which is not an event: %s", name, b.typeName(arg), why)
		return nil, nil
	}
	r := &model.Reaction{Method: name, Correlate: model.CorrelatePrefix + strings.TrimPrefix(name, "On"), Event: ref, Pos: pos}
	cfd := correlates[r.Correlate]
	if cfd == nil {
		b.errorf(pos, "saga %s reacts to %s in %s but has no correlation rule for it: declare %s",
			s.GoName, b.typeName(arg), name, correlateWant(s.GoName, r.Correlate, b.typeName(arg)))
		return nil, nil
	}
	cfn, _ := b.pkg.Info.Defs[cfd.Name].(*types.Func)
	if cfn == nil {
		return nil, nil
	}
	csig := cfn.Type().(*types.Signature)
	cok := csig.Params().Len() == 1 && !csig.Variadic() && csig.Results().Len() == 2 &&
		types.Identical(csig.Params().At(0).Type(), sig.Params().At(1).Type()) &&
		types.Identical(csig.Results().At(0).Type(), types.Typ[types.String]) &&
		types.Identical(csig.Results().At(1).Type(), types.Typ[types.Bool])
	if !cok {
		b.errorf(b.pos(cfd.Name.Pos()), "%s has the wrong signature: want %s, have %s",
			r.Correlate, correlateWant(s.GoName, r.Correlate, b.typeName(arg)), b.describe(cfd))
		return nil, nil
	}
	return r, ev
}

// sagaTargets finds the aggregates the package sends commands to: the
// static type of the command argument of every call of
// (*saga.Actions).Send and (*saga.Send).Compensate in the
// package must be a command of an aggregate (or its <A>Command
// interface), of this package or an imported one.
func (b *builder) sagaTargets(mp *model.Package, files map[string]*sourceFile) []*model.CommandTarget {
	var out []*model.CommandTarget
	seen := map[[2]string]bool{}
	for _, f := range b.pkg.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			fn, _ := b.pkg.Info.Uses[sel.Sel].(*types.Func)
			if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != model.SagaPath {
				return true
			}
			recv := fn.Type().(*types.Signature).Recv()
			if recv == nil {
				return true
			}
			p, _ := recv.Type().(*types.Pointer)
			if p == nil || !(fn.Name() == "Send" && isNamed(p.Elem(), model.SagaPath, "Actions") ||
				fn.Name() == "Compensate" && isNamed(p.Elem(), model.SagaPath, "Send")) {
				return true
			}
			arg := call.Args[1]
			t := b.pkg.Info.TypeOf(arg)
			if t == nil || t == types.Typ[types.Invalid] {
				return true // a type error, reported as such
			}
			tgt, why := b.commandTarget(mp, t, files)
			if why != "" {
				b.errorf(b.pos(arg.Pos()), "%s sends %s, which is not a command of any aggregate: %s", fn.Name(), b.typeName(t), why)
				return true
			}
			if key := [2]string{tgt.PkgPath, tgt.Aggregate}; !seen[key] {
				seen[key] = true
				out = append(out, tgt)
			}
			return true
		})
	}
	return out
}

// commandTarget resolves the aggregate of a command type (or of an
// <A>Command interface).
func (b *builder) commandTarget(mp *model.Package, t types.Type, files map[string]*sourceFile) (*model.CommandTarget, string) {
	want := fmt.Sprintf("want a value of a type with a %scommand directive (commands travel as values)", directive.Prefix)
	named, _ := t.(*types.Named)
	if named == nil || named.Obj().Pkg() == nil {
		return nil, want
	}
	obj := named.Obj()
	pkg := obj.Pkg()
	tgt := &model.CommandTarget{PkgPath: pkg.Path(), PkgName: pkg.Name()}
	if pkg == b.pkg.Types {
		for _, a := range mp.Aggregates {
			for _, c := range a.Commands {
				if c.GoName == obj.Name() {
					tgt.Aggregate = a.GoName
					return tgt, ""
				}
			}
		}
		return nil, fmt.Sprintf("annotate %s %scommand <Aggregate>", obj.Name(), directive.Prefix)
	}
	// Another package: by its directive, else by its generated sealing
	// method is<A>Command and repository type <A>Repository.
	name := b.pkg.Fset.Position(obj.Pos()).Filename
	if sf := parsedFile(files, name); sf != nil {
		for _, d := range sf.dirs {
			if d.Type == obj.Name() && d.Kind == directive.Command && d.Target != "" {
				tgt.Aggregate = d.Target
				return tgt, ""
			}
			if d.Kind == directive.Aggregate && obj.Name() == d.Type+"Command" {
				tgt.Aggregate = d.Type
				return tgt, ""
			}
		}
	}
	mset := types.NewMethodSet(named)
	for i := range mset.Len() {
		m := mset.At(i).Obj().Name()
		agg, ok1 := strings.CutPrefix(m, "is")
		agg, ok2 := strings.CutSuffix(agg, "Command")
		if !ok1 || !ok2 || agg == "" {
			continue
		}
		if r, _ := pkg.Scope().Lookup(agg + "Repository").(*types.TypeName); r != nil {
			tgt.Aggregate = agg
			return tgt, ""
		}
	}
	return nil, fmt.Sprintf("%s has no %scommand directive and no generated command marker", obj.Name(), directive.Prefix)
}

// parsedFile returns the directives of the Go file name, parsed once.
func parsedFile(files map[string]*sourceFile, name string) *sourceFile {
	if name == "" {
		return nil
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
	return sf
}
