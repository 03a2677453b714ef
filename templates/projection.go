package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Projection emits a projection's checkpoint-name constant and its
// Projection method, which describes it to the runtime: the wire names it
// consumes (the <E>WireNames of each handled event), a Handle that
// dispatches a record on its stream type and wire name to the On<Event>
// method through the event's Decode<E> (records of other events are skipped
// without decoding), and Reset and Position when the type has them.
func Projection(f *jen.File, pkg *model.Package, p *model.Projection) {
	for _, h := range p.Handlers {
		if h.Event.PkgPath != pkg.Path {
			f.ImportName(h.Event.PkgPath, h.Event.PkgName)
		}
	}
	f.Comment(fmt.Sprintf("%s is the checkpoint name of the %s projection.", model.ProjectionNameConst(p), p.GoName))
	f.Const().Id(model.ProjectionNameConst(p)).Op("=").Lit(p.Name)

	var wire []jen.Code
	for _, h := range p.Handlers {
		wire = append(wire, jen.Qual(h.Event.PkgPath, model.WireNamesFuncOf(h.Event.GoName)).Call())
	}
	events := wire[0]
	if len(wire) > 1 {
		events = jen.Qual("slices", "Concat").Call(wire...)
	}

	// Handlers grouped by aggregate, in order of first appearance.
	type group struct {
		pkg, agg string
		hs       []*model.Handler
	}
	var groups []*group
	for _, h := range p.Handlers {
		var g *group
		for _, x := range groups {
			if x.pkg == h.Event.PkgPath && x.agg == h.Event.Aggregate {
				g = x
			}
		}
		if g == nil {
			g = &group{pkg: h.Event.PkgPath, agg: h.Event.Aggregate}
			groups = append(groups, g)
		}
		g.hs = append(g.hs, h)
	}
	multi := jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}
	rec := func(field string) *jen.Statement { return jen.Id("rec").Dot(field) }
	handle := jen.Func().Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("rec").Qual(model.RuntimePath, "Record")).Error().BlockFunc(func(b *jen.Group) {
		for _, g := range groups {
			b.If(rec("Stream").Dot("Type").Op("==").Qual(g.pkg, model.StreamTypeConstOf(g.agg))).BlockFunc(func(b *jen.Group) {
				for _, h := range g.hs {
					b.If(
						jen.List(jen.Id("e"), jen.Id("ok"), jen.Err()).Op(":=").Qual(h.Event.PkgPath, model.DecodeFuncOf(h.Event.GoName)).Call(rec("Name"), rec("Schema"), rec("Data")),
						jen.Id("ok"),
					).Block(
						jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Op("&").Qual(model.RuntimePath, "DecodeError").Custom(multi,
							jen.Id("Stream").Op(":").Add(rec("Stream")),
							jen.Id("Version").Op(":").Add(rec("Version")),
							jen.Id("Position").Op(":").Add(rec("Position")),
							jen.Id("What").Op(":").Add(rec("Name")),
							jen.Id("Err").Op(":").Err(),
						))),
						jen.Return(jen.Id("p").Dot(h.Method).Call(jen.Id("ctx"), jen.Qual(model.RuntimePath, "EnvelopeOf").Call(jen.Id("rec"), jen.Id("e")))),
					)
				}
			})
		}
		b.Return(jen.Nil())
	})
	fields := []jen.Code{
		jen.Id("Name").Op(":").Id(model.ProjectionNameConst(p)),
		jen.Id("Events").Op(":").Add(events),
		jen.Id("Handle").Op(":").Add(handle),
	}
	if p.Reset {
		fields = append(fields, jen.Id("Reset").Op(":").Id("p").Dot(model.ResetMethod))
	}
	if p.Position {
		fields = append(fields, jen.Id("Position").Op(":").Id("p").Dot(model.PositionMethod))
	}

	var methods []string
	for _, h := range p.Handlers {
		methods = append(methods, h.Method)
	}
	f.Comment(fmt.Sprintf("%s describes the %s projection to the runtime (runtime.RunProjection,", model.ProjectionMethod, p.GoName))
	f.Comment(fmt.Sprintf("runtime.ProjectionGroup): checkpoint name %s, the wire names of the", model.ProjectionNameConst(p)))
	f.Comment(fmt.Sprintf("events it consumes, and a Handle that decodes only those and calls %s.", list(methods)))
	switch {
	case p.Reset && p.Position:
		f.Comment("Reset enables rebuilds; Position selects exactly-once delivery.")
	case p.Reset:
		f.Comment("Reset enables rebuilds; delivery is at-least-once (handlers must be idempotent).")
	case p.Position:
		f.Comment("Position selects exactly-once delivery; without Reset, rebuilds are refused.")
	default:
		f.Comment("Delivery is at-least-once (handlers must be idempotent); without Reset, rebuilds are refused.")
	}
	f.Func().Params(jen.Id("p").Op("*").Id(p.GoName)).Id(model.ProjectionMethod).Params().Qual(model.RuntimePath, "Projection").Block(
		jen.Return(jen.Qual(model.RuntimePath, "Projection").Custom(multi, fields...)),
	)
}
