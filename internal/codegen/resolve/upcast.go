package resolve

import (
	"cmp"
	"go/ast"
	"go/types"
	"slices"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/directive"
	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// The rules for //cqrs:upcast (docs/directives.md, "Upcasters"):
//
//   - An upcaster is a plain func F(old Old) New. Old is an unannotated
//     struct type of the package describing an older stored shape; New is
//     an event type, or the Old type of another upcaster (a chain).
//   - Every struct type in a chain has one identity (wire name, version):
//     an event's is its own; an old type's is what its upcaster reads:
//     from=<wire name>@<version>, or by default New's wire name at New's
//     version minus one.
//   - An upcaster lifts exactly one version: what it reads is version v,
//     what it returns is version v+1 (under any wire name: a different
//     one renames the event).
//   - Each old type and each (wire name, version) has one upcaster.
//   - A wire name belongs to one current event per aggregate: an old form
//     may not be stored under another event's wire name.
//   - Chains start at version 1: every event or old type at version v > 1
//     is returned by an upcaster (reading v-1); otherwise events stored at
//     the lower versions could not be read, which is a gap.
//   - A chain may end at a saga type instead of an event: it lifts the
//     saga's stored state, whose identity is (saga name, version=). A saga
//     state has one name, so its upcasters take no from=.

// upcaster is one //cqrs:upcast func being resolved.
type upcaster struct {
	d       directive.Directive
	in, out *types.TypeName
	// Resolved: the current event it leads to, the identities it reads
	// and returns, and the funcs from in to the event.
	agg             *model.Aggregate
	target          *model.Event
	saga            *model.Saga // instead of agg and target: a saga state chain
	inName, outName string
	inVer, outVer   uint32
	funcs           []string
	state           int // 0 new, 1 resolving, 2 done
	bad             bool
}

type eventRef struct {
	agg *model.Aggregate
	ev  *model.Event
}

// upcasts resolves the //cqrs:upcast directives into the Upcasts and
// FormerNames of the model's events, reporting every rule broken.
// annotated maps every annotated type to its directive.
func (b *builder) upcasts(mp *model.Package, dirs []directive.Directive, annotated map[string]directive.Directive) {
	events := map[string]eventRef{}
	for _, a := range mp.Aggregates {
		for _, e := range a.Events {
			events[e.GoName] = eventRef{a, e}
		}
	}
	sagas := map[string]*model.Saga{}
	for _, sg := range mp.Sagas {
		sagas[sg.GoName] = sg
	}
	decls := map[string]*ast.FuncDecl{}
	for _, f := range b.pkg.Files {
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
				decls[fd.Name.Name] = fd
			}
		}
	}

	// Shapes.
	var ups []*upcaster
	readers := map[*types.TypeName]*upcaster{}
	for _, d := range dirs {
		u := b.upcastShape(d, decls[d.Type], annotated)
		if u == nil {
			continue
		}
		if prev := readers[u.in]; prev != nil {
			b.errorf(u.d.TypePos, "upcasters %s and %s (%s) both read %s: each old type has one upcaster; declare another struct type for the other stored form",
				u.d.Type, prev.d.Type, shortPos(prev.d.TypePos), u.in.Name())
			continue
		}
		readers[u.in] = u
		ups = append(ups, u)
	}

	// Targets and identities, following each chain to its event.
	var resolve func(u *upcaster, path []string)
	resolve = func(u *upcaster, path []string) {
		switch u.state {
		case 2:
			return
		case 1:
			b.errorf(u.d.TypePos, "upcasters form a cycle: %s → %s: a chain of upcasters must end at an event type",
				strings.Join(path, " → "), u.d.Type)
			u.bad = true
			return
		}
		u.state = 1
		defer func() { u.state = 2 }()
		if ref, ok := events[u.out.Name()]; ok {
			u.agg, u.target = ref.agg, ref.ev
			u.outName, u.outVer = ref.ev.WireName, ref.ev.Version
			u.funcs = []string{u.d.Type}
		} else if sg, ok := sagas[u.out.Name()]; ok {
			u.saga = sg
			u.outName, u.outVer = sg.Name, sg.Version
			u.funcs = []string{u.d.Type}
		} else {
			next := readers[u.out]
			if next == nil {
				if _, isEvent := annotated[u.out.Name()]; !isEvent {
					b.errorf(u.d.TypePos, "upcaster %s returns %s, which is neither an event type nor read by another %s%s: return the next version (an event type, or the old type the next upcaster reads)",
						u.d.Type, u.out.Name(), directive.Prefix, directive.Upcast)
				}
				u.bad = true // an event type in error is reported there
				return
			}
			resolve(next, append(path, u.d.Type))
			if next.bad {
				u.bad = true
				return
			}
			u.agg, u.target, u.saga = next.agg, next.target, next.saga
			u.outName, u.outVer = next.inName, next.inVer
			u.funcs = append([]string{u.d.Type}, next.funcs...)
		}
		switch {
		case u.d.From != "" && u.saga != nil:
			b.errorf(u.d.Pos, "upcaster %s lifts the state of saga %s, whose states are all stored under its name %q: drop from=; the upcaster returning version v reads version v-1",
				u.d.Type, u.saga.GoName, u.saga.Name)
			u.bad = true
		case u.d.From != "":
			u.inName, u.inVer = u.d.From, u.d.FromVersion
			if u.inVer+1 != u.outVer || u.inVer == ^uint32(0) {
				b.errorf(u.d.Pos, "upcaster %s reads %s@%d but returns %s, which is version %d (%s@%d): an upcaster lifts exactly one version, so it must return version %d",
					u.d.Type, u.inName, u.inVer, u.out.Name(), u.outVer, u.outName, u.outVer, uint64(u.inVer)+1)
				u.bad = true
			}
		case u.outVer <= 1 && u.saga != nil:
			b.errorf(u.d.TypePos, "upcaster %s returns %s, which is version 1 (%s@1): there is no older state for it to read; bump version= on saga %s",
				u.d.Type, u.out.Name(), u.outName, u.saga.GoName)
			u.bad = true
		case u.outVer <= 1:
			b.errorf(u.d.TypePos, "upcaster %s returns %s, which is version 1 (%s@1): there is no older version for it to read; bump version= on %s, or say what it reads with from=<wire name>@<version>",
				u.d.Type, u.out.Name(), u.outName, u.target.GoName)
			u.bad = true
		default:
			u.inName, u.inVer = u.outName, u.outVer-1
		}
	}
	for _, u := range ups {
		resolve(u, nil)
	}

	// One upcaster per stored form; one event per wire name.
	type form struct {
		stream, name string
		version      uint32
	}
	byForm := map[form]*upcaster{}
	owner := map[[2]string]*upcaster{} // (stream, wire name) → first upcaster reading it
	for _, u := range ups {
		if u.bad {
			continue
		}
		if u.saga != nil {
			k := form{"saga " + u.saga.GoName, u.inName, u.inVer}
			if prev := byForm[k]; prev != nil {
				b.errorf(u.d.TypePos, "upcasters %s and %s (%s) both read %s@%d: keep one upcaster per stored version",
					u.d.Type, prev.d.Type, shortPos(prev.d.TypePos), u.inName, u.inVer)
				u.bad = true
				continue
			}
			byForm[k] = u
			continue
		}
		k := form{u.agg.WireName, u.inName, u.inVer}
		if prev := byForm[k]; prev != nil {
			b.errorf(u.d.TypePos, "upcasters %s and %s (%s) both read %s@%d: keep one upcaster per stored version",
				u.d.Type, prev.d.Type, shortPos(prev.d.TypePos), u.inName, u.inVer)
			u.bad = true
			continue
		}
		byForm[k] = u
		for _, e := range u.agg.Events {
			if e.WireName == u.inName && e != u.target {
				b.errorf(u.d.TypePos, "upcaster %s reads %s@%d into %s, but %q is the wire name of event %s: a wire name belongs to one event type; give the old form its own name",
					u.d.Type, u.inName, u.inVer, u.target.GoName, u.inName, e.GoName)
				u.bad = true
			}
		}
		if u.bad {
			continue
		}
		ok := [2]string{u.agg.WireName, u.inName}
		if prev := owner[ok]; prev != nil && prev.target != u.target {
			b.errorf(u.d.TypePos, "upcaster %s reads %s@%d into %s, but upcaster %s (%s) reads %q into %s: a wire name belongs to one event type",
				u.d.Type, u.inName, u.inVer, u.target.GoName, prev.d.Type, shortPos(prev.d.TypePos), u.inName, prev.target.GoName)
			u.bad = true
			continue
		}
		if owner[ok] == nil {
			owner[ok] = u
		}
	}

	// Gaps: every event or old type above version 1 must be returned by
	// an upcaster.
	returned := map[*types.TypeName]bool{}
	for _, u := range ups {
		returned[u.out] = true
	}
	for _, a := range mp.Aggregates {
		for _, e := range a.Events {
			obj, _ := b.pkg.Types.Scope().Lookup(e.GoName).(*types.TypeName)
			if e.Version > 1 && obj != nil && !returned[obj] {
				b.errorf(e.Pos, "event %s is version %d, but no %s%s returns %s: events stored at version %d could not be read; add %s%s func(old %sV%d) %s (or set version=1 if none were ever stored)",
					e.GoName, e.Version, directive.Prefix, directive.Upcast, e.GoName, e.Version-1,
					directive.Prefix, directive.Upcast, e.GoName, e.Version-1, e.GoName)
			}
		}
	}
	for _, sg := range mp.Sagas {
		obj, _ := b.pkg.Types.Scope().Lookup(sg.GoName).(*types.TypeName)
		if sg.Version > 1 && obj != nil && !returned[obj] {
			b.errorf(sg.Pos, "saga %s is version %d, but no %s%s returns %s: instance states stored at version %d could not be read; add %s%s func(old %sV%d) %s (or set version=1 if no instance was ever stored)",
				sg.GoName, sg.Version, directive.Prefix, directive.Upcast, sg.GoName, sg.Version-1,
				directive.Prefix, directive.Upcast, sg.GoName, sg.Version-1, sg.GoName)
		}
	}
	for _, u := range ups {
		if !u.bad && u.inVer > 1 && !returned[u.in] {
			what, name := "events", ""
			if u.saga != nil {
				what, name = "instance states", u.saga.GoName
			} else {
				name = u.target.GoName
			}
			b.errorf(u.d.TypePos, "upcaster %s reads %s@%d, but no %s%s returns %s: %s stored at version %d could not be read; add %s%s func(old %sV%d) %s",
				u.d.Type, u.inName, u.inVer, directive.Prefix, directive.Upcast, u.in.Name(), what, u.inVer-1,
				directive.Prefix, directive.Upcast, name, u.inVer-1, u.in.Name())
		}
	}

	// The model: per event, own wire name first, then former names in
	// source order; versions ascending.
	for _, u := range ups {
		if u.bad {
			continue
		}
		s := b.res.Struct(u.in)
		if s == nil {
			continue
		}
		if u.saga != nil {
			u.saga.Upcasts = append(u.saga.Upcasts, &model.Upcast{WireName: u.inName, Version: u.inVer, Struct: s, Funcs: u.funcs, Pos: u.d.Pos})
			continue
		}
		e := u.target
		e.Upcasts = append(e.Upcasts, &model.Upcast{WireName: u.inName, Version: u.inVer, Struct: s, Funcs: u.funcs, Pos: u.d.Pos})
		if u.inName != e.WireName && !slices.Contains(e.FormerNames, u.inName) {
			e.FormerNames = append(e.FormerNames, u.inName)
		}
	}
	for _, a := range mp.Aggregates {
		for _, e := range a.Events {
			rank := func(name string) int {
				if name == e.WireName {
					return -1
				}
				return slices.Index(e.FormerNames, name)
			}
			slices.SortStableFunc(e.Upcasts, func(x, y *model.Upcast) int {
				if rx, ry := rank(x.WireName), rank(y.WireName); rx != ry {
					return rx - ry
				}
				return int(int64(x.Version) - int64(y.Version))
			})
		}
	}
	for _, sg := range mp.Sagas {
		slices.SortStableFunc(sg.Upcasts, func(x, y *model.Upcast) int { return cmp.Compare(x.Version, y.Version) })
	}
}

// upcastShape checks that d annotates func F(old Old) New with Old an
// unannotated struct type of the package and New a struct type of the
// package, reporting problems; nil when it does not.
func (b *builder) upcastShape(d directive.Directive, fd *ast.FuncDecl, annotated map[string]directive.Directive) *upcaster {
	fn, _ := b.pkg.Types.Scope().Lookup(d.Type).(*types.Func)
	if fn == nil || fd == nil {
		b.errorf(d.Pos, "%s%s on %s: not a package-level func", directive.Prefix, directive.Upcast, d.Type)
		return nil
	}
	sig := fn.Type().(*types.Signature)
	var in, out *types.TypeName
	if sig.TypeParams().Len() == 0 && sig.Params().Len() == 1 && sig.Results().Len() == 1 && !sig.Variadic() {
		in = b.localStruct(sig.Params().At(0).Type())
		out = b.localStruct(sig.Results().At(0).Type())
	}
	if in == nil || out == nil {
		b.errorf(d.TypePos, "upcaster %s has the wrong shape: want func %s(old Old) New, Old and New struct types of this package (Old the stored shape, New the next version), have %s",
			d.Type, d.Type, b.funcString(fd))
		return nil
	}
	if prev, ok := annotated[in.Name()]; ok {
		b.errorf(d.TypePos, "upcaster %s reads %s, which is annotated %s%s: an upcaster's input is an unannotated struct type describing the old stored shape (e.g. %sV1)",
			d.Type, in.Name(), directive.Prefix, prev.Kind, in.Name())
		return nil
	}
	if prev, ok := annotated[out.Name()]; ok && prev.Kind != directive.Event && prev.Kind != directive.Saga {
		b.errorf(d.TypePos, "upcaster %s returns %s, which is annotated %s%s: an upcaster returns an event type, a saga type or the old type of the next upcaster",
			d.Type, out.Name(), directive.Prefix, prev.Kind)
		return nil
	}
	return &upcaster{d: d, in: in, out: out}
}

// localStruct returns the type name of t if t is a defined, non-generic
// struct type of the package.
func (b *builder) localStruct(t types.Type) *types.TypeName {
	named, ok := types.Unalias(t).(*types.Named)
	if !ok || named.Obj().Pkg() != b.pkg.Types || named.TypeArgs().Len() > 0 {
		return nil
	}
	if _, ok := named.Underlying().(*types.Struct); !ok {
		return nil
	}
	if obj, _ := b.pkg.Types.Scope().Lookup(named.Obj().Name()).(*types.TypeName); obj != named.Obj() {
		return nil // declared inside a function
	}
	return named.Obj()
}

// funcString renders a plain func's signature from its syntax.
func (b *builder) funcString(fd *ast.FuncDecl) string {
	var sb strings.Builder
	sb.WriteString("func " + fd.Name.Name)
	if tp := fd.Type.TypeParams; tp != nil && len(tp.List) > 0 {
		sb.WriteString("[" + b.fields(tp) + "]")
	}
	sb.WriteString("(" + b.fields(fd.Type.Params) + ")")
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
