package templates

import (
	"github.com/dave/jennifer/jen"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Crypto-shredding: the codec of an event with fields tagged pii. It is a
// code path of its own, so that the codecs of other structs are exactly
// what they would be without it. Such an event's encoder takes the
// *runtime.Sealer the repository passes and seals each tagged field:
//
//	func cqrsMarshal<S>(v *S, seal *runtime.Sealer) ([]byte, error)
//	func cqrsAppend<S>(b []byte, v *S, depth int, seal *runtime.Sealer) ([]byte, error)
//
// Its decoder has the usual signature: records are opened
// (runtime.OpenRecord) before decoding, so a tagged field holds its
// plaintext, or the placeholder once its subject is forgotten; the decoder
// reads it with wire.ReadOpenedString, which refuses a value still sealed.

// sealerType is *runtime.Sealer.
func sealerType() *jen.Statement { return jen.Op("*").Qual(model.RuntimePath, "Sealer") }

func emitSealedMarshal(f *jen.File, s *model.Struct) {
	size := 5
	var extra []jen.Code
	for _, fd := range s.Fields {
		size += len(fd.Key) + 5 + staticSize(fd.Type)
		if fd.PII != nil {
			size += 64 // the sealed value's header, nonce and tag
		}
		if fd.Type.Kind == model.String || fd.Type.Kind == model.Bytes {
			extra = append(extra, jen.Len(jen.Id("v").Dot(fd.GoName)))
		}
	}
	capExpr := jen.Lit(size)
	for _, e := range extra {
		capExpr = capExpr.Op("+").Add(e)
	}
	docf(f.Group, 0, "%s encodes v as a MessagePack map keyed by field name, its fields tagged pii sealed by seal.", MarshalFunc(s))
	f.Func().Id(MarshalFunc(s)).Params(jen.Id("v").Op("*").Id(s.GoName), jen.Id("seal").Add(sealerType())).Params(jen.Index().Byte(), jen.Error()).Block(
		jen.Return(jen.Id(appendFunc(s)).Call(jen.Make(jen.Index().Byte(), jen.Lit(0), capExpr), jen.Id("v"), jen.Lit(0), jen.Id("seal"))),
	)
}

func emitSealedAppend(f *jen.File, s *model.Struct) {
	e := &emitter{s: s}
	e.onErr = func() jen.Code { return jen.Return(jen.Id("b"), jen.Err()) }
	var body []jen.Code
	body = append(body, jen.If(jen.Id("depth").Op(">").Add(wire("MaxDepth"))).Block(
		jen.Return(jen.Id("b"), structErr(s, wire("ErrTooDeep"))),
	))
	body = append(body, appendRaw(mapHeader(len(s.Fields))))
	for _, fd := range s.Fields {
		body = append(body, appendRaw(strHeader(fd.Key)+fd.Key))
		if fd.PII != nil {
			body = append(body, e.try(jen.List(jen.Id("b"), jen.Err()).Op("=").Id("seal").Dot("String").Call(
				jen.Id("b"), jen.Lit(fd.Key), asString(fd.PII.Subject), asString(fd))))
			continue
		}
		body = append(body, e.enc(fd.Type, val{x: jen.Id("v").Dot(fd.GoName)})...)
	}
	body = append(body, jen.Return(jen.Id("b"), jen.Nil()))
	body = append([]jen.Code{jen.Var().Err().Error()}, body...)
	docf(f.Group, 0, "%s appends v to b as a MessagePack map keyed by field name, its fields tagged pii sealed by seal.", appendFunc(s))
	f.Func().Id(appendFunc(s)).Params(jen.Id("b").Index().Byte(), jen.Id("v").Op("*").Add(structType(s)), jen.Id("depth").Int(), jen.Id("seal").Add(sealerType())).
		Params(jen.Index().Byte(), jen.Error()).Block(body...)
}

// asString is v.F as a string (converted when F has a named string type).
func asString(fd *model.Field) *jen.Statement {
	x := jen.Id("v").Dot(fd.GoName)
	if fd.Type.Name != "" {
		return jen.String().Call(x)
	}
	return x
}

// decodePII is the decoding of a field tagged pii: an opened string.
func (e *emitter) decodePII(fd *model.Field) []jen.Code {
	dst := jen.Id("v").Dot(fd.GoName)
	if fd.Type.Name == "" {
		return []jen.Code{e.try(jen.List(dst, jen.Id("b"), jen.Err()).Op("=").Add(wire("ReadOpenedString")).Call(jen.Id("b"), jen.Id("src")))}
	}
	x := e.fresh("x")
	return []jen.Code{
		jen.Var().Id(x).String(),
		e.try(jen.List(jen.Id(x), jen.Id("b"), jen.Err()).Op("=").Add(wire("ReadOpenedString")).Call(jen.Id("b"), jen.Id("src"))),
		dst.Clone().Op("=").Add(typeExpr(fd.Type)).Call(jen.Id(x)),
	}
}

// sealedMarshalAdapter is the table's encoder of an event with fields
// tagged pii: func(e S, seal *runtime.Sealer) ([]byte, error) { return cqrsMarshalS(&e, seal) }.
func sealedMarshalAdapter(s *model.Struct) jen.Code {
	return jen.Func().Params(jen.Id("e").Id(s.GoName), jen.Id("seal").Add(sealerType())).Params(jen.Index().Byte(), jen.Error()).
		Add(oneLine(jen.Return(jen.Id(MarshalFunc(s)).Call(jen.Op("&").Id("e"), jen.Id("seal")))))
}
