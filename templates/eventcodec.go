package templates

import (
	"fmt"

	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// EventCodec emits the functions that encode any event of an aggregate
// into runtime.EventData (wire name, schema version, bytes) and decode it
// back from its stored name and schema version, using the struct codecs.
func EventCodec(f *jen.File, a *model.Aggregate) {
	ev := model.EventInterface(a)
	data := jen.Qual(model.RuntimePath, "EventData")
	f.Comment(fmt.Sprintf("%s encodes an event of %s with its wire name and schema version.", model.EncodeEventFunc(a), a.GoName))
	f.Func().Id(model.EncodeEventFunc(a)).Params(jen.Id("e").Id(ev)).Params(data.Clone(), jen.Error()).Block(
		jen.Switch(jen.Id("e").Op(":=").Id("e").Assert(jen.Type())).BlockFunc(func(g *jen.Group) {
			for _, e := range a.Events {
				g.Case(jen.Id(e.GoName)).Block(
					jen.List(jen.Id("data"), jen.Err()).Op(":=").Id(MarshalFunc(e.Struct)).Call(jen.Op("&").Id("e")),
					jen.If(jen.Err().Op("!=").Nil()).Block(
						jen.Return(data.Clone().Values(), jen.Qual("fmt", "Errorf").Call(
							jen.Lit("cqrsgen: encoding event "+e.GoName+": %w"), jen.Err())),
					),
					jen.Return(data.Clone().Values(jen.Dict{
						jen.Id("Name"):   jen.Id(model.EventNameConst(e)),
						jen.Id("Schema"): jen.Id(model.SchemaVersionConst(e)),
						jen.Id("Data"):   jen.Id("data"),
					}), jen.Nil()),
				)
			}
		}),
		jen.Return(data.Clone().Values(), jen.Qual("fmt", "Errorf").Call(
			jen.Lit(fmt.Sprintf("cqrsgen: %%T is not an event of %s: %%w", a.GoName)), jen.Id("e"), jen.Qual(model.RuntimePath, "ErrInvalid"))),
	)

	f.Comment(fmt.Sprintf("%s decodes a stored event of %s from its wire name and schema", model.DecodeEventFunc(a), a.GoName))
	f.Comment("version, upcasting older versions and former names to the current types. An")
	f.Comment("unknown name or version is a *runtime.UnknownEventError.")
	if len(a.Retired) > 0 {
		f.Comment("A retired one (//cqrs:retired) is runtime.ErrRetired, which the repository skips.")
	}
	f.Func().Id(model.DecodeEventFunc(a)).Params(jen.Id("name").String(), jen.Id("schema").Uint32(), jen.Id("data").Index().Byte()).
		Params(jen.Id(ev), jen.Error()).Block(
		jen.Switch(jen.Id("name")).BlockFunc(func(g *jen.Group) {
			for _, e := range a.Events {
				decodeCurrent := []jen.Code{
					jen.Var().Id("e").Id(e.GoName),
					jen.If(jen.Err().Op(":=").Id(UnmarshalFunc(e.Struct)).Call(jen.Id("data"), jen.Op("&").Id("e")), jen.Err().Op("!=").Nil()).Block(
						jen.Return(jen.Nil(), jen.Err()),
					),
					jen.Return(jen.Id("e"), jen.Nil()),
				}
				own := upcastsNamed(e, e.WireName)
				if len(own) == 0 {
					g.Case(jen.Id(model.EventNameConst(e))).Block(append([]jen.Code{
						jen.If(jen.Id("schema").Op("!=").Id(model.SchemaVersionConst(e))).Block(jen.Break()),
					}, decodeCurrent...)...)
				} else {
					g.Case(jen.Id(model.EventNameConst(e))).Block(jen.Switch(jen.Id("schema")).BlockFunc(func(g *jen.Group) {
						g.Case(jen.Id(model.SchemaVersionConst(e))).Block(decodeCurrent...)
						upcastCases(g, own)
					}))
				}
				for _, name := range e.FormerNames {
					g.Case(jen.Lit(name)).Block(jen.Switch(jen.Id("schema")).BlockFunc(func(g *jen.Group) {
						upcastCases(g, upcastsNamed(e, name))
					}))
				}
			}
			retiredCases(g, a.Retired)
		}),
		jen.Return(jen.Nil(), jen.Op("&").Qual(model.RuntimePath, "UnknownEventError").Values(jen.Dict{
			jen.Id("Name"):   jen.Id("name"),
			jen.Id("Schema"): jen.Id("schema"),
		})),
	)
}

// upcastsNamed returns e's upcasts stored under the wire name name.
func upcastsNamed(e *model.Event, name string) []*model.Upcast {
	var out []*model.Upcast
	for _, u := range e.Upcasts {
		if u.WireName == name {
			out = append(out, u)
		}
	}
	return out
}

// upcastCases emits one schema case per older stored form: decode into
// the old type, then apply the upcasters in order.
//
//	case 1:
//		var old DepositedV1
//		if err := cqrsUnmarshalDepositedV1(data, &old); err != nil {
//			return nil, err
//		}
//		return upcastV2(upcastV1(old)), nil
func upcastCases(g *jen.Group, ups []*model.Upcast) {
	for _, u := range ups {
		call := jen.Id("old")
		for _, fn := range u.Funcs {
			call = jen.Id(fn).Call(call)
		}
		g.Case(jen.Lit(int(u.Version))).Block(
			jen.Var().Id("old").Id(u.Struct.GoName),
			jen.If(jen.Err().Op(":=").Id(UnmarshalFunc(u.Struct)).Call(jen.Id("data"), jen.Op("&").Id("old")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Nil(), jen.Err()),
			),
			jen.Return(call, jen.Nil()),
		)
	}
}

// retiredCases emits one case per retired wire name, returning
// runtime.ErrRetired for its retired versions:
//
//	case "Lent":
//		switch schema {
//		case 1, 2:
//			return nil, runtime.ErrRetired
//		}
func retiredCases(g *jen.Group, retired []model.Retired) {
	var names []string
	versions := map[string][]jen.Code{}
	for _, r := range retired {
		if versions[r.WireName] == nil {
			names = append(names, r.WireName)
		}
		versions[r.WireName] = append(versions[r.WireName], jen.Lit(int(r.Version)))
	}
	for _, name := range names {
		g.Case(jen.Lit(name)).Block(jen.Switch(jen.Id("schema")).Block(
			jen.Case(versions[name]...).Block(jen.Return(jen.Nil(), jen.Qual(model.RuntimePath, "ErrRetired"))),
		))
	}
}
