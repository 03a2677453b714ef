package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Dispatch emits Apply, which routes an event to its Apply<Event> method,
// and, when the aggregate has commands, Decide, which routes a command to
// its Handle<Command> method, both through the aggregate's tables.
func Dispatch(f *jen.File, a *model.Aggregate) {
	ev := model.EventInterface(a)
	docf(f.Group, 0, "%s evolves the state by one event, calling the Apply method of the event's type. "+
		"A pointer to an event is applied as its value; a nil event changes nothing.", model.ApplyMethod)
	f.Func().Params(jen.Id("a").Op("*").Id(a.GoName)).Id(model.ApplyMethod).Params(jen.Id("e").Id(ev)).Add(oneLine(
		jen.Id(model.EventsFunc(a)).Call().Dot("Apply").Call(jen.Id("a"), jen.Id("e")),
	))
	if len(a.Commands) == 0 {
		return
	}
	cmd := model.CommandInterface(a)
	docf(f.Group, 0, "%s decides a command against the current state, calling the Handle method of "+
		"the command's type, and returns the events to append. It does not change the state. A nil "+
		"command is an error matching runtime.ErrInvalid.", model.DecideMethod)
	f.Func().Params(jen.Id("a").Op("*").Id(a.GoName)).Id(model.DecideMethod).Params(jen.Id("c").Id(cmd)).
		Params(jen.Index().Id(ev), jen.Error()).Block(
		jen.Id(model.EventsFunc(a)).Call().Comment("builds the command table too"),
		jen.Return(jen.Id(model.CommandTable(a)).Dot("Decide").Call(jen.Id("a"), jen.Id("c"))),
	)
}
