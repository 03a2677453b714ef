package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Dispatch emits Apply, which routes an event to its Apply<Event> method,
// and, when the aggregate has commands, Decide, which routes a command to
// its Handle<Command> method.
func Dispatch(f *jen.File, a *model.Aggregate) {
	ev := model.EventInterface(a)
	f.Comment(fmt.Sprintf("%s evolves the state by one event, calling the Apply method of the", model.ApplyMethod))
	f.Comment("event's type. A nil event changes nothing.")
	f.Func().Params(jen.Id("a").Op("*").Id(a.GoName)).Id(model.ApplyMethod).Params(jen.Id("e").Id(ev)).Block(
		jen.Switch(jen.Id("e").Op(":=").Id("e").Assert(jen.Type())).BlockFunc(func(g *jen.Group) {
			for _, e := range a.Events {
				g.Case(jen.Id(e.GoName)).Block(jen.Id("a").Dot("Apply" + e.GoName).Call(jen.Id("e")))
			}
		}),
	)
	if len(a.Commands) == 0 {
		return
	}
	cmd := model.CommandInterface(a)
	f.Comment(fmt.Sprintf("%s decides a command against the current state, calling the Handle", model.DecideMethod))
	f.Comment("method of the command's type, and returns the events to append. It does")
	f.Comment("not change the state.")
	f.Func().Params(jen.Id("a").Op("*").Id(a.GoName)).Id(model.DecideMethod).Params(jen.Id("c").Id(cmd)).
		Params(jen.Index().Id(ev), jen.Error()).Block(
		jen.Switch(jen.Id("c").Op(":=").Id("c").Assert(jen.Type())).BlockFunc(func(g *jen.Group) {
			for _, c := range a.Commands {
				g.Case(jen.Id(c.GoName)).Block(jen.Return(jen.Id("a").Dot("Handle" + c.GoName).Call(jen.Id("c"))))
			}
		}),
		jen.Return(jen.Nil(), jen.Qual("fmt", "Errorf").Call(
			jen.Lit(fmt.Sprintf("cqrsgen: %%T is not a command of %s: %%w", a.GoName)), jen.Id("c"), jen.Qual(model.RuntimePath, "ErrInvalid"))),
	)
}
