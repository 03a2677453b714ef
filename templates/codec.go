package templates

import (
	"fmt"
	"strconv"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
	"github.com/dave/jennifer/jen"
)

// WirePath is the import path of the byte-level MessagePack helpers the
// generated codecs call, and WireAlias the name the generated file imports
// it as (listed by CodecNames, since a package-level identifier of the same
// name would collide with it).
const (
	WirePath  = "github.com/cqrsgen/cqrsgen/runtime/wire"
	WireAlias = "cqrswire"
)

// MarshalFunc is the generated encoder of s:
// func cqrsMarshal<S>(v *S) ([]byte, error).
func MarshalFunc(s *model.Struct) string { return "cqrsMarshal" + s.CodecName() }

// UnmarshalFunc is the generated decoder of s:
// func cqrsUnmarshal<S>(data []byte, v *S) error.
func UnmarshalFunc(s *model.Struct) string { return "cqrsUnmarshal" + s.CodecName() }

// StableUnmarshalFunc is the generated decoder of an event type s for
// bytes that are never written again (runtime.EventView.Stable), which
// slices its strings from data instead of copying them:
// func cqrsUnmarshalStable<S>(data []byte, v *S) error. Only the event
// types that StableDecoded reports get one.
func StableUnmarshalFunc(s *model.Struct) string { return "cqrsUnmarshalStable" + s.CodecName() }

// StableDecoded reports whether event type s gets a StableUnmarshalFunc
// (and is described by registry.StableEvent): it is the package's own, it
// has strings to slice, and no fields tagged pii (whose aggregates Load
// reads through ReadStream, which lends nothing).
func StableDecoded(s *model.Struct) bool { return topLevel(s) && !s.HasPII() && hasStrings(s) }

// stableEvents returns the event types of pkg that StableDecoded reports.
func stableEvents(pkg *model.Package) map[*model.Struct]bool {
	out := map[*model.Struct]bool{}
	for _, a := range pkg.Aggregates {
		for _, e := range a.Events {
			if StableDecoded(e.Struct) {
				out[e.Struct] = true
			}
		}
	}
	return out
}

// appendFunc appends s to a buffer: func(b []byte, v *S, depth int) ([]byte, error).
func appendFunc(s *model.Struct) string { return "cqrsAppend" + s.CodecName() }

// decodeFunc decodes s from the front of a buffer and returns the rest:
// func(b []byte, v *S, depth int) ([]byte, error).
func decodeFunc(s *model.Struct) string { return "cqrsDecode" + s.CodecName() }

// structType is the Go type of s in the generated package.
func structType(s *model.Struct) *jen.Statement {
	if s.PkgPath != "" {
		return jen.Qual(s.PkgPath, s.GoName)
	}
	return jen.Id(s.GoName)
}

// topLevel reports whether s gets cqrsMarshal and cqrsUnmarshal: events and
// states do, and they are the package's own; another package's struct is
// only ever a field.
func topLevel(s *model.Struct) bool { return s.PkgPath == "" }

// CodecNames lists every file- or package-level identifier that Codecs
// declares for pkg (including the wire import name), sorted, for collision
// checks.
func CodecNames(pkg *model.Package) []string {
	if len(pkg.Structs) == 0 {
		return nil
	}
	out := []string{WireAlias}
	stable := stableEvents(pkg)
	for _, s := range pkg.Structs {
		out = append(out, appendFunc(s), decodeFunc(s))
		if topLevel(s) {
			out = append(out, MarshalFunc(s), UnmarshalFunc(s))
		}
		if stable[s] {
			out = append(out, StableUnmarshalFunc(s))
		}
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Codecs emits, for every struct S of pkg.Structs (in that order), a
// reflection-free MessagePack codec:
//
//	func cqrsMarshal<S>(v *S) ([]byte, error)
//	func cqrsUnmarshal<S>(data []byte, v *S) error
//
// and the helpers they share (cqrsAppend<S>, cqrsDecode<S>), and for the
// event types that StableDecoded reports
//
//	func cqrsUnmarshalStable<S>(data []byte, v *S) error
//
// A struct is a map keyed by wire key, in field order; decoding skips unknown keys,
// leaves missing fields zero, resets *v first, and rejects trailing bytes.
// The byte format is what msgpack/v5 reads and writes by reflection; see
// package runtime/wire for the details and the one difference (time.Time
// decodes in UTC).
func Codecs(f *jen.File, pkg *model.Package) {
	if len(pkg.Structs) == 0 {
		return
	}
	f.ImportAlias(WirePath, WireAlias)
	stable := stableEvents(pkg)
	for _, s := range pkg.Structs {
		if s.HasPII() { // see pii.go
			emitSealedMarshal(f, s)
			emitUnmarshal(f, s)
			emitSealedAppend(f, s)
			emitDecode(f, s)
			continue
		}
		if topLevel(s) {
			emitMarshal(f, s)
			emitUnmarshal(f, s)
		}
		if stable[s] {
			emitStableUnmarshal(f, s)
		}
		emitAppend(f, s)
		emitDecode(f, s)
	}
}

func wire(name string) *jen.Statement { return jen.Qual(WirePath, name) }

func emitMarshal(f *jen.File, s *model.Struct) {
	// Start with room for the fixed-size part and the top-level strings, so
	// a typical event is encoded with one allocation.
	size := 5
	var extra []jen.Code
	for _, fd := range s.Fields {
		size += len(fd.Key) + 5 + staticSize(fd.Type)
		if fd.Type.Kind == model.String || fd.Type.Kind == model.Bytes {
			extra = append(extra, jen.Len(jen.Id("v").Dot(fd.GoName)))
		}
	}
	capExpr := jen.Lit(size)
	for _, e := range extra {
		capExpr = capExpr.Op("+").Add(e)
	}
	docf(f.Group, 0, "%s encodes v as a MessagePack map keyed by field name.", MarshalFunc(s))
	f.Func().Id(MarshalFunc(s)).Params(jen.Id("v").Op("*").Id(s.GoName)).Params(jen.Index().Byte(), jen.Error()).Block(
		jen.Return(jen.Id(appendFunc(s)).Call(jen.Make(jen.Index().Byte(), jen.Lit(0), capExpr), jen.Id("v"), jen.Lit(0))),
	)
}

func staticSize(t *model.Type) int {
	switch t.Kind {
	case model.Bool:
		return 1
	case model.Time:
		return 15
	case model.String, model.Bytes:
		return 5
	case model.Text, model.Binary:
		return 24
	case model.Array:
		if t.Len < 64 && t.Elem.Kind != model.StructKind {
			return 5 + int(t.Len)*staticSize(t.Elem)
		}
		return 16
	case model.Pointer, model.Slice, model.Map, model.StructKind:
		return 16
	}
	return 9 // numbers
}

func emitUnmarshal(f *jen.File, s *model.Struct) {
	// Strings are sliced from one copy of a small input (see wire.Source).
	src := jen.Lit("")
	if hasStrings(s) {
		src = wire("Source").Call(jen.Id("data"))
	}
	docf(f.Group, 0, "%s decodes data, one whole value as %s writes it, into v.", UnmarshalFunc(s), MarshalFunc(s))
	f.Func().Id(UnmarshalFunc(s)).Params(jen.Id("data").Index().Byte(), jen.Id("v").Op("*").Id(s.GoName)).Error().Block(
		jen.List(jen.Id("rest"), jen.Err()).Op(":=").Id(decodeFunc(s)).Call(jen.Id("data"), src, jen.Id("v"), jen.Lit(0)),
		jen.Return(wire("Whole").Call(jen.Lit(s.GoName), jen.Id("rest"), jen.Err())),
	)
}

// emitStableUnmarshal emits StableUnmarshalFunc(s): the decoder slices
// its strings from data itself (wire.StableSource), which is safe only
// because its callers (registry.StableEvent's rows, for views a store
// marks Stable) pass bytes that are never written again.
func emitStableUnmarshal(f *jen.File, s *model.Struct) {
	docf(f.Group, 0, "%s is %s for data whose bytes are never written again (runtime.EventView.Stable): "+
		"its strings are sliced from data, not copied, and keep data alive.", StableUnmarshalFunc(s), UnmarshalFunc(s))
	f.Func().Id(StableUnmarshalFunc(s)).Params(jen.Id("data").Index().Byte(), jen.Id("v").Op("*").Id(s.GoName)).Error().Block(
		jen.List(jen.Id("rest"), jen.Err()).Op(":=").Id(decodeFunc(s)).Call(jen.Id("data"), wire("StableSource").Call(jen.Id("data")), jen.Id("v"), jen.Lit(0)),
		jen.Return(wire("Whole").Call(jen.Lit(s.GoName), jen.Id("rest"), jen.Err())),
	)
}

func structErr(s *model.Struct, err jen.Code) *jen.Statement {
	return wire("NewStructError").Call(jen.Lit(s.GoName), err)
}

func fieldErr(s *model.Struct, key jen.Code) *jen.Statement {
	return wire("NewFieldError").Call(jen.Lit(s.GoName), key, jen.Err())
}

// val is a Go expression for an addressable value being encoded or decoded.
// star marks a dereference *p (ptr holds p), which must be parenthesised
// before indexing or slicing, and whose address is p itself.
type val struct {
	x    jen.Code
	ptr  jen.Code
	star bool
}

func (v val) code() *jen.Statement { return jen.Add(v.x) }

func (v val) base() *jen.Statement {
	if v.star {
		return jen.Parens(v.x)
	}
	return jen.Add(v.x)
}

func (v val) addr() *jen.Statement {
	if v.ptr != nil {
		return jen.Add(v.ptr)
	}
	return jen.Op("&").Add(v.x)
}

func deref(p jen.Code) val { return val{x: jen.Op("*").Add(p), ptr: p, star: true} }

// emitter holds per-function state: a counter for fresh local names, and
// whether err is used.
type emitter struct {
	s      *model.Struct
	n      int
	usesEr bool
	onErr  func() jen.Code // the statement run when err != nil
}

func (e *emitter) fresh(prefix string) string {
	name := prefix + strconv.Itoa(e.n)
	e.n++
	return name
}

// try runs assign (which sets err) and then the error path if err != nil.
func (e *emitter) try(assign jen.Code) jen.Code {
	e.usesEr = true
	return jen.If(assign, jen.Err().Op("!=").Nil()).Block(e.onErr())
}

// ---- encoding ----

func emitAppend(f *jen.File, s *model.Struct) {
	e := &emitter{s: s}
	e.onErr = func() jen.Code { return jen.Return(jen.Id("b"), jen.Err()) }
	var body []jen.Code
	body = append(body, jen.If(jen.Id("depth").Op(">").Add(wire("MaxDepth"))).Block(
		jen.Return(jen.Id("b"), structErr(s, wire("ErrTooDeep"))),
	))
	body = append(body, appendRaw(mapHeader(len(s.Fields))))
	for _, fd := range s.Fields {
		body = append(body, appendRaw(strHeader(fd.Key)+fd.Key))
		p := val{x: jen.Id("v").Dot(fd.GoName)}
		body = append(body, e.enc(fd.Type, p)...)
	}
	body = append(body, jen.Return(jen.Id("b"), jen.Nil()))
	if e.usesEr {
		body = append([]jen.Code{jen.Var().Err().Error()}, body...)
	}
	docf(f.Group, 0, "%s appends v to b as a MessagePack map keyed by field name.", appendFunc(s))
	f.Func().Id(appendFunc(s)).Params(jen.Id("b").Index().Byte(), jen.Id("v").Op("*").Add(structType(s)), jen.Id("depth").Int()).
		Params(jen.Index().Byte(), jen.Error()).Block(body...)
}

// appendRaw appends constant bytes (a header and a key) in one go.
func appendRaw(raw string) jen.Code {
	return jen.Id("b").Op("=").Append(jen.Id("b"), jen.Lit(raw).Op("..."))
}

func mapHeader(n int) string {
	switch {
	case n <= 15:
		return string([]byte{byte(0x80 | n)})
	case n <= 0xffff:
		return string([]byte{0xde, byte(n >> 8), byte(n)})
	}
	return string([]byte{0xdf, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func strHeader(s string) string {
	n := len(s)
	switch {
	case n <= 31:
		return string([]byte{byte(0xa0 | n)})
	case n <= 0xff:
		return string([]byte{0xd9, byte(n)})
	case n <= 0xffff:
		return string([]byte{0xda, byte(n >> 8), byte(n)})
	}
	return string([]byte{0xdb, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// basic describes how a number, bool or string kind is written and read.
type basic struct {
	goType   string // the Go type the wire function takes or returns
	appendFn string
	appendAs string // the argument type of appendFn, when it differs from goType
	readFn   string
}

var basics = map[model.Kind]basic{
	model.Bool:    {"bool", "AppendBool", "", "ReadBool"},
	model.Int:     {"int", "AppendInt", "int64", "ReadInt"},
	model.Int8:    {"int8", "AppendInt", "int64", "ReadInt8"},
	model.Int16:   {"int16", "AppendInt", "int64", "ReadInt16"},
	model.Int32:   {"int32", "AppendInt", "int64", "ReadInt32"},
	model.Int64:   {"int64", "AppendInt", "", "ReadInt64"},
	model.Uint:    {"uint", "AppendUint", "uint64", "ReadUint"},
	model.Uint8:   {"uint8", "AppendUint", "uint64", "ReadUint8"},
	model.Uint16:  {"uint16", "AppendUint", "uint64", "ReadUint16"},
	model.Uint32:  {"uint32", "AppendUint", "uint64", "ReadUint32"},
	model.Uint64:  {"uint64", "AppendUint", "", "ReadUint64"},
	model.Float32: {"float32", "AppendFloat32", "", "ReadFloat32"},
	model.Float64: {"float64", "AppendFloat64", "", "ReadFloat64"},
	model.String:  {"string", "AppendString", "", "ReadString"},
}

// typeExpr is the Go type expression of t in the generated package.
func typeExpr(t *model.Type) *jen.Statement {
	if t.Name != "" {
		if t.PkgPath != "" {
			return jen.Qual(t.PkgPath, t.Name)
		}
		return jen.Id(t.Name)
	}
	if b, ok := basics[t.Kind]; ok {
		return jen.Id(b.goType)
	}
	switch t.Kind {
	case model.Bytes:
		return jen.Index().Byte()
	case model.Time:
		return jen.Qual("time", "Time")
	case model.Pointer:
		return jen.Op("*").Add(typeExpr(t.Elem))
	case model.Slice:
		return jen.Index().Add(typeExpr(t.Elem))
	case model.Array:
		return jen.Index(jen.Lit(int(t.Len))).Add(typeExpr(t.Elem))
	case model.Map:
		return jen.Map(typeExpr(t.Key)).Add(typeExpr(t.Elem))
	case model.StructKind:
		return structType(t.Struct)
	}
	panic(fmt.Sprintf("templates: codec for unsupported kind %v", t.Kind)) // typemap never yields it
}

// byteArray reports whether t is an array of plain bytes, which msgpack
// writes as bin.
func byteArray(t *model.Type) bool {
	return t.Kind == model.Array && t.Elem.Kind == model.Uint8 && t.Elem.Name == ""
}

func (e *emitter) enc(t *model.Type, v val) []jen.Code {
	app := func(fn string, args ...jen.Code) jen.Code {
		return jen.Id("b").Op("=").Add(wire(fn)).Call(append([]jen.Code{jen.Id("b")}, args...)...)
	}
	if b, ok := basics[t.Kind]; ok {
		arg := v.code()
		switch {
		case b.appendAs != "":
			arg = jen.Id(b.appendAs).Call(v.code())
		case t.Name != "":
			arg = jen.Id(b.goType).Call(v.code())
		}
		return []jen.Code{app(b.appendFn, arg)}
	}
	switch t.Kind {
	case model.Time:
		return []jen.Code{app("AppendTime", v.code())}
	case model.Bytes:
		return []jen.Code{app("AppendBytes", v.code())}
	case model.Text, model.Binary:
		// The type's own encoding: a str of its text, or a bin.
		m, fn, conv := "MarshalText", "AppendString", jen.String()
		if t.Kind == model.Binary {
			m, fn, conv = "MarshalBinary", "AppendBytes", nil
		}
		x := e.fresh("m")
		arg := jen.Id(x)
		if conv != nil {
			arg = conv.Call(jen.Id(x))
		}
		return []jen.Code{
			jen.Var().Id(x).Index().Byte(),
			e.try(jen.List(jen.Id(x), jen.Err()).Op("=").Add(v.base()).Dot(m).Call()),
			app(fn, arg),
		}
	case model.StructKind:
		return []jen.Code{e.try(jen.List(jen.Id("b"), jen.Err()).Op("=").Id(appendFunc(t.Struct)).Call(
			jen.Id("b"), v.addr(), jen.Id("depth").Op("+").Lit(1)))}
	case model.Pointer:
		return []jen.Code{jen.If(v.code().Op("==").Nil()).Block(app("AppendNil")).Else().Block(
			e.enc(t.Elem, deref(v.code()))...)}
	case model.Slice:
		i := e.fresh("i")
		loop := jen.For(jen.Id(i).Op(":=").Range().Add(v.code())).Block(
			e.enc(t.Elem, val{x: v.base().Index(jen.Id(i))})...)
		return []jen.Code{jen.If(v.code().Op("==").Nil()).Block(app("AppendNil")).Else().Block(
			app("AppendArrayHeader", jen.Len(v.code())), loop)}
	case model.Array:
		if byteArray(t) {
			return []jen.Code{app("AppendBytes", v.base().Index(jen.Op(":")))}
		}
		i := e.fresh("i")
		return []jen.Code{
			app("AppendArrayHeader", jen.Lit(int(t.Len))),
			jen.For(jen.Id(i).Op(":=").Range().Add(v.base())).Block(
				e.enc(t.Elem, val{x: v.base().Index(jen.Id(i))})...),
		}
	case model.Map:
		k, x := e.fresh("k"), e.fresh("e")
		var body []jen.Code
		body = append(body, e.enc(t.Key, val{x: jen.Id(k)})...)
		body = append(body, e.enc(t.Elem, val{x: jen.Id(x)})...)
		return []jen.Code{jen.If(v.code().Op("==").Nil()).Block(app("AppendNil")).Else().Block(
			app("AppendMapHeader", jen.Len(v.code())),
			jen.For(jen.List(jen.Id(k), jen.Id(x)).Op(":=").Range().Add(v.code())).Block(body...))}
	}
	panic(fmt.Sprintf("templates: codec for unsupported kind %v", t.Kind)) // typemap never yields it
}

// ---- decoding ----

func emitDecode(f *jen.File, s *model.Struct) {
	var cases []jen.Code
	for _, fd := range s.Fields {
		key := fd.Key
		e := &emitter{s: s}
		e.onErr = func() jen.Code { return jen.Return(jen.Id("b"), fieldErr(s, jen.Lit(key))) }
		if fd.PII != nil { // see pii.go
			cases = append(cases, jen.Case(jen.Lit(fd.Key)).Block(e.decodePII(fd)...))
			continue
		}
		cases = append(cases, jen.Case(jen.Lit(fd.Key)).Block(e.dec(fd.Type, val{x: jen.Id("v").Dot(fd.GoName)})...))
	}
	cases = append(cases, jen.Default().Block(
		jen.If(jen.List(jen.Id("b"), jen.Err()).Op("=").Add(wire("Skip")).Call(jen.Id("b")), jen.Err().Op("!=").Nil()).Block(
			jen.Return(jen.Id("b"), fieldErr(s, jen.String().Call(jen.Id("fk")))),
		),
	))
	structFail := jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Id("b"), structErr(s, jen.Err())))
	docf(f.Group, 0, "%s decodes one %s from the front of b into v (reset first), returning the rest.", decodeFunc(s), s.GoName)
	f.Func().Id(decodeFunc(s)).Params(jen.Id("b").Index().Byte(), jen.Id("src").String(), jen.Id("v").Op("*").Add(structType(s)), jen.Id("depth").Int()).
		Params(jen.Index().Byte(), jen.Error()).Block(
		jen.If(jen.Id("depth").Op(">").Add(wire("MaxDepth"))).Block(
			jen.Return(jen.Id("b"), structErr(s, wire("ErrTooDeep"))),
		),
		jen.List(jen.Id("n"), jen.Id("b"), jen.Err()).Op(":=").Add(wire("ReadMapHeader")).Call(jen.Id("b")),
		structFail,
		jen.Op("*").Id("v").Op("=").Add(structType(s)).Values(),
		jen.For(jen.Id("i").Op(":=").Lit(0), jen.Id("i").Op("<").Id("n"), jen.Id("i").Op("++")).Block(
			jen.Var().Id("fk").Index().Byte(),
			jen.If(jen.List(jen.Id("fk"), jen.Id("b"), jen.Err()).Op("=").Add(wire("ReadStringBytes")).Call(jen.Id("b")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Id("b"), structErr(s, jen.Err())),
			),
			jen.Switch(jen.String().Call(jen.Id("fk"))).Block(cases...),
		),
		jen.Return(jen.Id("b"), jen.Nil()),
	)
}

// hasStrings reports whether decoding s may read a string.
func hasStrings(s *model.Struct) bool {
	seen := map[*model.Struct]bool{}
	var inStruct func(s *model.Struct) bool
	var inType func(t *model.Type) bool
	inType = func(t *model.Type) bool {
		switch {
		case t == nil:
			return false
		case t.Kind == model.String:
			return true
		case t.Kind == model.StructKind:
			return inStruct(t.Struct)
		}
		return inType(t.Key) || inType(t.Elem)
	}
	inStruct = func(s *model.Struct) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		for _, f := range s.Fields {
			if inType(f.Type) {
				return true
			}
		}
		return false
	}
	return inStruct(s)
}

// read3 is `dst, b, err = wire.fn(b)` followed by the error path.
func (e *emitter) read3(dst jen.Code, fn string) jen.Code {
	return e.try(jen.List(dst, jen.Id("b"), jen.Err()).Op("=").Add(wire(fn)).Call(jen.Id("b")))
}

// readString is `dst, b, err = wire.ReadStringIn(b, src)` and the error path.
func (e *emitter) readString(dst jen.Code, _ string) jen.Code {
	return e.try(jen.List(dst, jen.Id("b"), jen.Err()).Op("=").Add(wire("ReadStringIn")).Call(jen.Id("b"), jen.Id("src")))
}

func (e *emitter) dec(t *model.Type, v val) []jen.Code {
	if bs, ok := basics[t.Kind]; ok {
		read := e.read3
		if t.Kind == model.String {
			read = e.readString
		}
		if t.Name == "" {
			return []jen.Code{read(v.code(), bs.readFn)}
		}
		x := e.fresh("x")
		return []jen.Code{
			jen.Var().Id(x).Id(bs.goType),
			read(jen.Id(x), bs.readFn),
			v.code().Op("=").Add(typeExpr(t)).Call(jen.Id(x)),
		}
	}
	switch t.Kind {
	case model.Time:
		return []jen.Code{e.read3(v.code(), "ReadTime")}
	case model.Bytes:
		return []jen.Code{e.read3(v.code(), "ReadBytes")}
	case model.Text, model.Binary:
		// The bytes alias the input: the Unmarshaler contract says it
		// copies what it keeps.
		m := "UnmarshalText"
		if t.Kind == model.Binary {
			m = "UnmarshalBinary"
		}
		x := e.fresh("m")
		recv := v.addr()
		if v.ptr == nil {
			recv = jen.Parens(recv) // (&v.F).UnmarshalText
		}
		return []jen.Code{
			jen.Var().Id(x).Index().Byte(),
			e.read3(jen.Id(x), "ReadStringBytes"),
			e.try(jen.Err().Op("=").Add(recv).Dot(m).Call(jen.Id(x))),
		}
	case model.StructKind:
		return []jen.Code{e.try(jen.List(jen.Id("b"), jen.Err()).Op("=").Id(decodeFunc(t.Struct)).Call(
			jen.Id("b"), jen.Id("src"), v.addr(), jen.Id("depth").Op("+").Lit(1)))}
	case model.Pointer:
		p := e.fresh("p")
		inner := []jen.Code{jen.Id(p).Op(":=").New(typeExpr(t.Elem))}
		inner = append(inner, e.dec(t.Elem, deref(jen.Id(p)))...)
		inner = append(inner, v.code().Op("=").Id(p))
		return []jen.Code{jen.If(wire("IsNil").Call(jen.Id("b"))).Block(
			jen.Id("b").Op("=").Id("b").Index(jen.Lit(1), jen.Empty()),
			v.code().Op("=").Nil(),
		).Else().Block(inner...)}
	case model.Slice:
		n, s, i := e.fresh("n"), e.fresh("s"), e.fresh("i")
		return []jen.Code{
			jen.Var().Id(n).Int(),
			e.read3(jen.Id(n), "ReadArrayHeader"),
			jen.If(jen.Id(n).Op("<").Lit(0)).Block(v.code().Op("=").Nil()).Else().Block(
				jen.Id(s).Op(":=").Make(typeExpr(t), jen.Id(n)),
				jen.For(jen.Id(i).Op(":=").Range().Id(s)).Block(e.dec(t.Elem, val{x: jen.Id(s).Index(jen.Id(i))})...),
				v.code().Op("=").Id(s),
			),
		}
	case model.Array:
		if byteArray(t) {
			return []jen.Code{e.try(jen.List(jen.Id("b"), jen.Err()).Op("=").Add(wire("ReadBytesInto")).Call(
				jen.Id("b"), v.base().Index(jen.Op(":"))))}
		}
		n, i := e.fresh("n"), e.fresh("i")
		e.usesEr = true
		return []jen.Code{
			jen.Var().Id(n).Int(),
			e.read3(jen.Id(n), "ReadArrayHeader"),
			jen.If(jen.Id(n).Op("<").Lit(0)).Block(v.code().Op("=").Add(typeExpr(t)).Values()).
				Else().If(jen.Id(n).Op("!=").Lit(int(t.Len))).Block(
				jen.Err().Op("=").Add(wire("LengthError")).Call(jen.Lit(int(t.Len)), jen.Id(n)),
				e.onErr(),
			).Else().Block(
				jen.For(jen.Id(i).Op(":=").Range().Add(v.base())).Block(e.dec(t.Elem, val{x: v.base().Index(jen.Id(i))})...),
			),
		}
	case model.Map:
		n, m, i, k, x := e.fresh("n"), e.fresh("m"), e.fresh("i"), e.fresh("k"), e.fresh("e")
		body := []jen.Code{jen.Var().Id(k).Add(typeExpr(t.Key)), jen.Var().Id(x).Add(typeExpr(t.Elem))}
		body = append(body, e.dec(t.Key, val{x: jen.Id(k)})...)
		body = append(body, e.dec(t.Elem, val{x: jen.Id(x)})...)
		body = append(body, jen.Id(m).Index(jen.Id(k)).Op("=").Id(x))
		return []jen.Code{
			jen.Var().Id(n).Int(),
			e.read3(jen.Id(n), "ReadMapHeader"),
			jen.If(jen.Id(n).Op("<").Lit(0)).Block(v.code().Op("=").Nil()).Else().Block(
				jen.Id(m).Op(":=").Make(typeExpr(t), jen.Id(n)),
				jen.For(jen.Id(i).Op(":=").Lit(0), jen.Id(i).Op("<").Id(n), jen.Id(i).Op("++")).Block(body...),
				v.code().Op("=").Id(m),
			),
		}
	}
	panic(fmt.Sprintf("templates: codec for unsupported kind %v", t.Kind)) // typemap never yields it
}
