package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Constants emits the stable wire names of an aggregate and its events,
// kept apart from the Go identifiers so that types can be renamed without
// breaking stored data.
func Constants(f *jen.File, a *model.Aggregate) {
	docf(f.Group, 0, "Stable names of the %s aggregate and its events as they are stored. They must not "+
		"change once data exists; the Go types can be renamed freely.", a.GoName)
	f.Const().DefsFunc(func(g *jen.Group) {
		docf(g, 1, "%s is the stream type name of %s aggregates.", model.StreamTypeConst(a), a.GoName)
		g.Id(model.StreamTypeConst(a)).Op("=").Lit(a.WireName)
		docf(g, 1, "%s identifies the shape of %s's state: snapshots saved under another shape are "+
			"ignored and the state is rebuilt from events.", model.StateSchemaConst(a), a.GoName)
		g.Id(model.StateSchemaConst(a)).Op("=").Lit(StateSchema(a.State))
		for _, e := range a.Events {
			docf(g, 1, "%s is the wire name of %s events.", model.EventNameConst(e), e.GoName)
			g.Id(model.EventNameConst(e)).Op("=").Lit(e.WireName)
			docf(g, 1, "%s is the schema version %s events are written with.", model.SchemaVersionConst(e), e.GoName)
			g.Id(model.SchemaVersionConst(e)).Uint32().Op("=").Lit(int(e.Version))
		}
	})
}
