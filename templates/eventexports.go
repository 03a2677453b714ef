package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/model"
)

// DecodeFunc is the exported decoder of one event type E, pinned for
// projections and sagas (also of other packages): "DecodeE".
func DecodeFunc(e *model.Event) string { return DecodeFuncOf(e.GoName) }

// DecodeFuncOf is DecodeFunc for an event known by its Go name only.
func DecodeFuncOf(event string) string { return "Decode" + event }

// WireNamesFunc lists the wire names of one event type E: "EWireNames".
func WireNamesFunc(e *model.Event) string { return WireNamesFuncOf(e.GoName) }

// WireNamesFuncOf is WireNamesFunc for an event known by its Go name only.
func WireNamesFuncOf(event string) string { return event + "WireNames" }

// StreamTypeConstOf is StreamTypeConst for an aggregate known by its Go
// name only.
func StreamTypeConstOf(aggregate string) string { return aggregate + "StreamType" }

// eventExportNames lists the identifiers EventExports declares.
func eventExportNames(pkg *model.Package) []Name {
	var out []Name
	for _, a := range pkg.Aggregates {
		for _, e := range a.Events {
			out = append(out, Name{Name: DecodeFunc(e), For: e.Pos}, Name{Name: WireNamesFunc(e), For: e.Pos})
		}
	}
	return out
}

// EventExports emits, for every event E of an aggregate, the two exported
// functions through which code outside the aggregate (projections, sagas,
// other packages) consumes E without knowing the aggregate's codec:
//
//	func DecodeE(name string, schema uint32, data []byte) (E, bool, error)
//	func EWireNames() []string
//
// DecodeE reports ok=false, decoding nothing, when name is not one of E's
// wire names. An event stored under E's current name and schema version is
// decoded straight into an E by its struct codec; any other goes through
// the aggregate's event decoder (which upcasts older schema versions and
// former names) and the result is checked to be an E. The direct path
// spares the common case the event interface: boxing the decoded value
// into it costs an allocation, and asserting it back a type check.
func EventExports(f *jen.File, a *model.Aggregate) {
	for _, e := range a.Events {
		names := []jen.Code{jen.Id(EventNameConst(e))}
		for _, n := range e.FormerNames {
			names = append(names, jen.Lit(n))
		}
		zero := func() *jen.Statement { return jen.Id(e.GoName).Values() }

		f.Comment(fmt.Sprintf("%s decodes a stored %s event of the %s aggregate from its wire", DecodeFunc(e), e.GoName, a.GoName))
		f.Comment(fmt.Sprintf("name and schema version. ok is false, and nothing is decoded, when name is not one of %s;", WireNamesFunc(e)))
		f.Comment("older schema versions and former names are upcast to the current type.")
		f.Func().Id(DecodeFunc(e)).
			Params(jen.Id("name").String(), jen.Id("schema").Uint32(), jen.Id("data").Index().Byte()).
			Params(jen.Id(e.GoName), jen.Bool(), jen.Error()).Block(
			jen.If(jen.Id("name").Op("==").Id(EventNameConst(e)).Op("&&").Id("schema").Op("==").Id(SchemaVersionConst(e))).Block(
				jen.Var().Id("e").Id(e.GoName),
				jen.If(jen.Err().Op(":=").Id(UnmarshalFunc(e.Struct)).Call(jen.Id("data"), jen.Op("&").Id("e")), jen.Err().Op("!=").Nil()).Block(
					jen.Return(zero(), jen.True(), jen.Err()),
				),
				jen.Return(jen.Id("e"), jen.True(), jen.Nil()),
			),
			jen.Switch(jen.Id("name")).Block(
				jen.Case(names...),
				jen.Default().Return(zero(), jen.False(), jen.Nil()),
			),
			jen.List(jen.Id("ev"), jen.Err()).Op(":=").Id(DecodeEventFunc(a)).Call(jen.Id("name"), jen.Id("schema"), jen.Id("data")),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(zero(), jen.True(), jen.Err())),
			jen.List(jen.Id("e"), jen.Id("ok")).Op(":=").Id("ev").Assert(jen.Id(e.GoName)),
			jen.If(jen.Op("!").Id("ok")).Block(jen.Return(zero(), jen.True(), jen.Qual("fmt", "Errorf").Call(
				jen.Lit(fmt.Sprintf("cqrsgen: event %%q schema version %%d decodes to %%T, not %s: %%w", e.GoName)),
				jen.Id("name"), jen.Id("schema"), jen.Id("ev"), jen.Qual(RuntimePath, "ErrInvalid")))),
			jen.Return(jen.Id("e"), jen.True(), jen.Nil()),
		)

		f.Comment(fmt.Sprintf("%s returns the wire names %s events are stored under: %s", WireNamesFunc(e), e.GoName, EventNameConst(e)))
		f.Comment(fmt.Sprintf("first, then the former names upcast into %s. The slice is new on every call.", e.GoName))
		f.Func().Id(WireNamesFunc(e)).Params().Index().String().Block(
			jen.Return(jen.Index().String().Values(names...)),
		)
	}
}
