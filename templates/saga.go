package templates

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Saga emits a saga's name constant and its New<S>Saga function, which
// describes it to the runtime (runtime.RunSaga, runtime.LoadSaga): the wire
// names it reacts to, a Correlate that decodes a record through the
// event's Decode<E>, maps it to an instance with Correlate<E> and returns
// the On<E> reaction, OnDeadline when the type has it, an Execute that
// routes each command by its aggregate's <A>Command interface to the
// repository passed in, and the state codec with its schema version and,
// when the saga has state upcasters, UpcastState. The repositories come in a
// struct with one named field per target (SagaReposType), so that the
// order in which the saga's source first uses them cannot reorder a
// signature.
func Saga(f *jen.File, pkg *model.Package, s *model.Saga) {
	for _, r := range s.Reactions {
		if r.Event.PkgPath != pkg.Path {
			f.ImportName(r.Event.PkgPath, r.Event.PkgName)
		}
	}
	for _, t := range s.Targets {
		if t.PkgPath != pkg.Path {
			f.ImportName(t.PkgPath, t.PkgName)
		}
	}
	f.Comment(fmt.Sprintf("%s is the stable name of the %s saga: it names the saga's instance", model.SagaNameConst(s), s.GoName))
	f.Comment("streams, its checkpoint and the idempotency keys of its steps.")
	f.Const().Id(model.SagaNameConst(s)).Op("=").Lit(s.Name)

	ctx := func() *jen.Statement { return jen.Id("ctx").Qual("context", "Context") }
	actions := func() *jen.Statement { return jen.Id("do").Op("*").Qual(model.RuntimePath, "SagaActions") }
	reactType := jen.Func().Params(jen.Qual("context", "Context"), jen.Op("*").Id(s.GoName), jen.Op("*").Qual(model.RuntimePath, "SagaActions")).Error()

	var wire []jen.Code
	for _, r := range s.Reactions {
		wire = append(wire, jen.Qual(r.Event.PkgPath, model.WireNamesFuncOf(r.Event.GoName)).Call())
	}
	var events jen.Code = jen.Nil()
	switch {
	case len(wire) == 1:
		events = wire[0]
	case len(wire) > 1:
		events = jen.Qual("slices", "Concat").Call(wire...)
	}

	type group struct {
		pkg, agg string
		rs       []*model.Reaction
	}
	var groups []*group
	for _, r := range s.Reactions {
		var g *group
		for _, x := range groups {
			if x.pkg == r.Event.PkgPath && x.agg == r.Event.Aggregate {
				g = x
			}
		}
		if g == nil {
			g = &group{pkg: r.Event.PkgPath, agg: r.Event.Aggregate}
			groups = append(groups, g)
		}
		g.rs = append(g.rs, r)
	}
	multi := jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}
	rec := func(field string) *jen.Statement { return jen.Id("rec").Dot(field) }
	correlate := jen.Func().Params(jen.Id("rec").Qual(model.RuntimePath, "Record")).
		Params(jen.String(), reactType.Clone(), jen.Bool(), jen.Error()).BlockFunc(func(b *jen.Group) {
		for _, g := range groups {
			b.If(rec("Stream").Dot("Type").Op("==").Qual(g.pkg, model.StreamTypeConstOf(g.agg))).BlockFunc(func(b *jen.Group) {
				for _, r := range g.rs {
					b.If(
						jen.List(jen.Id("e"), jen.Id("ok"), jen.Err()).Op(":=").Qual(r.Event.PkgPath, model.DecodeFuncOf(r.Event.GoName)).Call(rec("Name"), rec("Schema"), rec("Data")),
						jen.Id("ok"),
					).Block(
						jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Lit(""), jen.Nil(), jen.False(), jen.Op("&").Qual(model.RuntimePath, "DecodeError").Custom(multi,
							jen.Id("Stream").Op(":").Add(rec("Stream")),
							jen.Id("Version").Op(":").Add(rec("Version")),
							jen.Id("Position").Op(":").Add(rec("Position")),
							jen.Id("What").Op(":").Add(rec("Name")),
							jen.Id("Err").Op(":").Err(),
						))),
						jen.Id("env").Op(":=").Qual(model.RuntimePath, "EnvelopeOf").Call(jen.Id("rec"), jen.Id("e")),
						jen.Var().Id("zero").Id(s.GoName),
						jen.List(jen.Id("instance"), jen.Id("found")).Op(":=").Id("zero").Dot(r.Correlate).Call(jen.Id("env")),
						jen.Return(
							jen.Id("instance"),
							jen.Func().Params(ctx(), jen.Id("s").Op("*").Id(s.GoName), actions()).Error().Block(
								jen.Return(jen.Id("s").Dot(r.Method).Call(jen.Id("ctx"), jen.Id("env"), jen.Id("do"))),
							),
							jen.Id("found"),
							jen.Nil(),
						),
					)
				}
			})
		}
		b.Return(jen.Lit(""), jen.Nil(), jen.False(), jen.Nil())
	})

	repos := slices.Clone(s.Targets)
	slices.SortFunc(repos, func(a, b *model.CommandTarget) int {
		return cmp.Compare(model.SagaRepoField(s, a), model.SagaRepoField(s, b))
	})
	reposType := model.SagaReposType(s)
	repo := func(t *model.CommandTarget) *jen.Statement { return jen.Id("repos").Dot(model.SagaRepoField(s, t)) }
	execute := jen.Func().Params(ctx(), jen.Id("id").String(), jen.Id("c").Any(), jen.Id("opts").Op("...").Qual(model.RuntimePath, "ExecOption")).
		Params(jen.Uint64(), jen.Error()).BlockFunc(func(b *jen.Group) {
		if len(s.Targets) > 0 {
			b.Switch(jen.Id("c").Op(":=").Id("c").Assert(jen.Type())).BlockFunc(func(b *jen.Group) {
				for _, t := range repos {
					b.Case(jen.Qual(t.PkgPath, t.Aggregate+"Command")).Block(
						jen.If(repo(t).Op("==").Nil()).Block(jen.Return(jen.Lit(0), jen.Qual("fmt", "Errorf").Call(
							jen.Lit(fmt.Sprintf("%%w: saga %s: %s.%s is nil, so it cannot execute %%T (to %%q)", s.GoName, reposType, model.SagaRepoField(s, t))),
							jen.Qual(model.RuntimePath, "ErrInvalid"), jen.Id("c"), jen.Id("id")))),
						jen.Return(repo(t).Dot("Execute").Call(jen.Id("ctx"), jen.Id("id"), jen.Id("c"), jen.Id("opts").Op("..."))),
					)
				}
			})
		}
		b.Return(jen.Lit(0), jen.Qual("fmt", "Errorf").Call(
			jen.Lit(fmt.Sprintf("%%w: saga %s has no repository for command %%T (to %%q)", s.GoName)),
			jen.Qual(model.RuntimePath, "ErrInvalid"), jen.Id("c"), jen.Id("id")))
	})
	var params []jen.Code
	if len(repos) > 0 {
		f.Comment(fmt.Sprintf("%s holds the repositories the %s saga sends its commands", reposType, s.GoName))
		f.Comment("through: one field per aggregate, named after it, sorted by name. Fill it with named")
		f.Comment("fields; a nil field fails the steps sent to its aggregate with an error matching")
		f.Comment("runtime.ErrInvalid.")
		f.Type().Id(reposType).StructFunc(func(g *jen.Group) {
			for _, t := range repos {
				g.Comment(fmt.Sprintf("%s executes the saga's %s.%sCommand steps.", model.SagaRepoField(s, t), t.PkgName, t.Aggregate))
				g.Id(model.SagaRepoField(s, t)).Op("*").Qual(t.PkgPath, t.Aggregate+"Repository")
			}
		})
		params = append(params, jen.Id("repos").Id(reposType))
	}

	fields := []jen.Code{
		jen.Id("Name").Op(":").Id(model.SagaNameConst(s)),
		jen.Id("Events").Op(":").Add(events),
		jen.Id("Correlate").Op(":").Add(correlate),
	}
	if s.Deadline {
		fields = append(fields, jen.Id("Deadline").Op(":").Func().
			Params(ctx(), jen.Id("s").Op("*").Id(s.GoName), jen.Id("d").Qual(model.RuntimePath, "SagaDeadline"), actions()).Error().Block(
			jen.Return(jen.Id("s").Dot(model.DeadlineMethod).Call(jen.Id("ctx"), jen.Id("d"), jen.Id("do"))),
		))
	}
	fields = append(fields,
		jen.Id("Execute").Op(":").Add(execute),
		jen.Id("EncodeState").Op(":").Id(MarshalFunc(s.State)),
		jen.Id("DecodeState").Op(":").Id(UnmarshalFunc(s.State)),
		jen.Id("StateVersion").Op(":").Lit(int(s.Version)),
	)
	if len(s.Upcasts) > 0 {
		fields = append(fields, jen.Id("UpcastState").Op(":").Add(upcastState(s)))
	}

	var methods []string
	for _, r := range s.Reactions {
		methods = append(methods, r.Method)
	}
	f.Comment(fmt.Sprintf("%s describes the %s saga to the runtime (runtime.RunSaga,", model.NewSagaFunc(s), s.GoName))
	f.Comment(fmt.Sprintf("runtime.LoadSaga): it reacts with %s to the events they take,", list(methods)))
	f.Comment("each mapped to an instance by its Correlate<Event> rule (called on a zero value).")
	if s.Deadline {
		f.Comment(fmt.Sprintf("Deadlines go to %s.", model.DeadlineMethod))
	} else {
		f.Comment("A deadline that falls due fails the saga (it has no OnDeadline method).")
	}
	if len(repos) > 0 {
		f.Comment("Commands execute through the repositories of repos, with each step's idempotency key.")
	} else {
		f.Comment("The package sends no commands.")
	}
	f.Func().Id(model.NewSagaFunc(s)).Params(params...).Op("*").Qual(model.RuntimePath, "Saga").Types(jen.Id(s.GoName)).Block(
		jen.Return(jen.Op("&").Qual(model.RuntimePath, "Saga").Types(jen.Id(s.GoName)).Custom(multi, fields...)),
	)
}

// upcastState emits the saga's UpcastState: each older stored form of the
// state is decoded with its own codec and lifted by its upcaster chain.
func upcastState(s *model.Saga) jen.Code {
	return jen.Func().Params(jen.Id("version").Uint32(), jen.Id("data").Index().Byte(), jen.Id("s").Op("*").Id(s.GoName)).Error().BlockFunc(func(b *jen.Group) {
		b.Switch(jen.Id("version")).BlockFunc(func(b *jen.Group) {
			for _, u := range s.Upcasts {
				var lifted jen.Code = jen.Id("old")
				for _, fn := range u.Funcs {
					lifted = jen.Id(fn).Call(lifted)
				}
				b.Case(jen.Lit(int(u.Version))).Block(
					jen.Var().Id("old").Id(u.Struct.GoName),
					jen.If(jen.Err().Op(":=").Id(UnmarshalFunc(u.Struct)).Call(jen.Id("data"), jen.Op("&").Id("old")), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
					jen.Op("*").Id("s").Op("=").Add(lifted),
					jen.Return(jen.Nil()),
				)
			}
		})
		b.Return(jen.Op("&").Qual(model.RuntimePath, "StateVersionError").Values(jen.Dict{
			jen.Id("Saga"):    jen.Id(model.SagaNameConst(s)),
			jen.Id("Stored"):  jen.Id("version"),
			jen.Id("Current"): jen.Lit(int(s.Version)),
		}))
	})
}
