package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Projection emits a projection's checkpoint-name constant and its
// Projection method, which describes it to the runtime: one projection.On per
// On<Event> method over the event's aggregate table (<A>Events), combined by
// projection.NewHandlers, which consumes exactly those events' wire names and
// decodes each record once, straight into the type its method takes
// (records of other events are skipped without decoding); Reset and
// Position when the type has them.
func Projection(f *jen.File, pkg *model.Package, p *model.Projection) {
	for _, h := range p.Handlers {
		if h.Event.PkgPath != pkg.Path {
			f.ImportName(h.Event.PkgPath, h.Event.PkgName)
		}
	}
	docf(f.Group, 0, "%s is the checkpoint name of the %s projection.", model.ProjectionNameConst(p), p.GoName)
	f.Const().Id(model.ProjectionNameConst(p)).Op("=").Lit(p.Name)

	var handlers []jen.Code
	var methods []string
	for _, h := range p.Handlers {
		handlers = append(handlers, jen.Qual(model.ProjectionPath, "On").Call(
			jen.Qual(h.Event.PkgPath, model.EventsFuncOf(h.Event.Aggregate)).Call(), jen.Id("p").Dot(h.Method)))
		methods = append(methods, h.Method)
	}
	multi := jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}
	fields := []jen.Code{
		jen.Id("Name").Op(":").Id(model.ProjectionNameConst(p)),
		jen.Id("Events").Op(":").Id("h").Dot("Names").Call(),
		jen.Id("Handle").Op(":").Id("h").Dot("Handle"),
	}
	if p.Reset {
		fields = append(fields, jen.Id("Reset").Op(":").Id("p").Dot(model.ResetMethod))
	}
	if p.Position {
		fields = append(fields, jen.Id("Position").Op(":").Id("p").Dot(model.PositionMethod))
	}

	var delivery string
	switch {
	case p.Reset && p.Position:
		delivery = "Reset enables rebuilds; Position selects exactly-once delivery."
	case p.Reset:
		delivery = "Reset enables rebuilds; delivery is at-least-once (handlers must be idempotent)."
	case p.Position:
		delivery = "Position selects exactly-once delivery; without Reset, rebuilds are refused."
	default:
		delivery = "Delivery is at-least-once (handlers must be idempotent); without Reset, rebuilds are refused."
	}
	docf(f.Group, 0, "%s describes the %s projection to the runtime (projection.Run, "+
		"projection.Group): checkpoint name %s, and handlers that decode only the events %s take "+
		"and call them with the concrete event. %s", model.ProjectionMethod, p.GoName,
		model.ProjectionNameConst(p), list(methods), delivery)
	f.Func().Params(jen.Id("p").Op("*").Id(p.GoName)).Id(model.ProjectionMethod).Params().Qual(model.ProjectionPath, "Projection").Block(
		jen.Id("h").Op(":=").Qual(model.ProjectionPath, "NewHandlers").Custom(multiLine, handlers...),
		jen.Return(jen.Qual(model.ProjectionPath, "Projection").Custom(multi, fields...)),
	)
}
