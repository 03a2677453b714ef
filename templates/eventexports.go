package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// EventExports emits, for every event E of an aggregate, the two exported
// functions through which code outside the aggregate (projections, sagas,
// other packages) consumes E without knowing the aggregate's codec:
//
//	func DecodeE(name string, schema uint32, data []byte) (E, bool, error)
//	func EWireNames() []string
//
// DecodeE reports ok=false, decoding nothing, when name is not one of E's
// wire names; otherwise it decodes through the aggregate's event decoder
// (which upcasts older schema versions and former names) and checks that
// the result is an E.
func EventExports(f *jen.File, a *model.Aggregate) {
	for _, e := range a.Events {
		names := []jen.Code{jen.Id(model.EventNameConst(e))}
		for _, n := range e.FormerNames {
			names = append(names, jen.Lit(n))
		}
		zero := func() *jen.Statement { return jen.Id(e.GoName).Values() }

		f.Comment(fmt.Sprintf("%s decodes a stored %s event of the %s aggregate from its wire", model.DecodeFunc(e), e.GoName, a.GoName))
		f.Comment(fmt.Sprintf("name and schema version. ok is false, and nothing is decoded, when name is not one of %s;", model.WireNamesFunc(e)))
		f.Comment("older schema versions and former names are upcast to the current type.")
		f.Func().Id(model.DecodeFunc(e)).
			Params(jen.Id("name").String(), jen.Id("schema").Uint32(), jen.Id("data").Index().Byte()).
			Params(jen.Id(e.GoName), jen.Bool(), jen.Error()).Block(
			jen.Switch(jen.Id("name")).Block(
				jen.Case(names...),
				jen.Default().Return(zero(), jen.False(), jen.Nil()),
			),
			jen.List(jen.Id("ev"), jen.Err()).Op(":=").Id(model.DecodeEventFunc(a)).Call(jen.Id("name"), jen.Id("schema"), jen.Id("data")),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(zero(), jen.True(), jen.Err())),
			jen.List(jen.Id("e"), jen.Id("ok")).Op(":=").Id("ev").Assert(jen.Id(e.GoName)),
			jen.If(jen.Op("!").Id("ok")).Block(jen.Return(zero(), jen.True(), jen.Qual("fmt", "Errorf").Call(
				jen.Lit(fmt.Sprintf("cqrsgen: event %%q schema version %%d decodes to %%T, not %s: %%w", e.GoName)),
				jen.Id("name"), jen.Id("schema"), jen.Id("ev"), jen.Qual(model.RuntimePath, "ErrInvalid")))),
			jen.Return(jen.Id("e"), jen.True(), jen.Nil()),
		)

		f.Comment(fmt.Sprintf("%s returns the wire names %s events are stored under: %s", model.WireNamesFunc(e), e.GoName, model.EventNameConst(e)))
		f.Comment(fmt.Sprintf("first, then the former names upcast into %s. The slice is new on every call.", e.GoName))
		f.Func().Id(model.WireNamesFunc(e)).Params().Index().String().Block(
			jen.Return(jen.Index().String().Values(names...)),
		)
	}
}
