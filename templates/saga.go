package templates

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Saga emits a saga's name constant and its New<S>Saga function, which
// describes it to the runtime (saga.Run, saga.Load): the wire
// names it reacts to and a Correlate (saga.NewReactions of one
// saga.React per On<E>, over the event's aggregate table <A>Events, which
// decodes a record once, maps it to an instance with Correlate<E> and
// returns the On<E> reaction), OnDeadline when the type has it, an Execute that
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
	docf(f.Group, 0, "%s is the stable name of the %s saga: it names the saga's instance streams, its "+
		"checkpoint and the idempotency keys of its steps.", model.SagaNameConst(s), s.GoName)
	f.Const().Id(model.SagaNameConst(s)).Op("=").Lit(s.Name)

	ctx := func() *jen.Statement { return jen.Id("ctx").Qual("context", "Context") }
	actions := func() *jen.Statement { return jen.Id("do").Op("*").Qual(model.SagaPath, "Actions") }

	// One saga.React per reaction over the event's aggregate table: the
	// runtime decodes each record once, straight into the reaction's type.
	var reactions []jen.Code
	for _, r := range s.Reactions {
		recv := jen.Parens(jen.Op("*").Id(s.GoName))
		reactions = append(reactions, jen.Qual(model.SagaPath, "React").Call(
			jen.Qual(r.Event.PkgPath, model.EventsFuncOf(r.Event.Aggregate)).Call(),
			recv.Clone().Dot(r.Correlate), recv.Clone().Dot(r.Method)))
	}
	multi := jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}

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
		jen.Id("Events").Op(":").Id("r").Dot("Names").Call(),
		jen.Id("Correlate").Op(":").Id("r").Dot("Correlate"),
	}
	if s.Deadline {
		fields = append(fields, jen.Id("Deadline").Op(":").Func().
			Params(ctx(), jen.Id("s").Op("*").Id(s.GoName), jen.Id("d").Qual(model.SagaPath, "Deadline"), actions()).Error().Block(
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
	text := fmt.Sprintf("%s describes the %s saga to the runtime (saga.Run, saga.Load): "+
		"it reacts with %s to the events they take, each mapped to an instance by its Correlate<Event> "+
		"rule (called on a zero value).", model.NewSagaFunc(s), s.GoName, list(methods))
	if s.Deadline {
		text += fmt.Sprintf(" Deadlines go to %s.", model.DeadlineMethod)
	} else {
		text += " A deadline that falls due fails the saga (it has no OnDeadline method)."
	}
	if len(repos) > 0 {
		text += " Commands execute through the repositories of repos, with each step's idempotency key."
	} else {
		text += " The package sends no commands."
	}
	docf(f.Group, 0, "%s", text)
	f.Func().Id(model.NewSagaFunc(s)).Params(params...).Op("*").Qual(model.SagaPath, "Saga").Types(jen.Id(s.GoName)).Block(
		jen.Id("r").Op(":=").Qual(model.SagaPath, "NewReactions").Types(jen.Id(s.GoName)).Custom(multiLine, reactions...),
		jen.Return(jen.Op("&").Qual(model.SagaPath, "Saga").Types(jen.Id(s.GoName)).Custom(multi, fields...)),
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
		b.Return(jen.Op("&").Qual(model.SagaPath, "StateVersionError").Values(jen.Dict{
			jen.Id("Saga"):    jen.Id(model.SagaNameConst(s)),
			jen.Id("Stored"):  jen.Id("version"),
			jen.Id("Current"): jen.Lit(int(s.Version)),
		}))
	})
}
