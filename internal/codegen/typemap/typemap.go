// Package typemap converts the go/types description of a user package's
// struct types into model.Struct values for the codec emitter, and reports
// every field type the codec cannot encode as a positioned error.
//
// Rules (the codec's contract with the user):
//   - Every field of a struct of the package is encoded, exported or not:
//     the codec is generated into the same package, so it can reach
//     unexported fields, and skipping them would silently drop aggregate
//     state from snapshots. (Reflection msgpack and encoding/json skip
//     them; tag a field `msgpack:"-"` to skip it here.)
//   - The wire key is the field name, or the name in a `msgpack:"name"` tag.
//     `msgpack:"-"` skips the field. The tag option omitempty is accepted
//     and ignored (every field is always written, which readers of either
//     kind accept); any other option is an error.
//   - An embedded struct (by value) has its fields promoted, as reflection
//     msgpack and encoding/json do: they are keys of the outer map. An
//     embedded pointer is an error; any other embedded type is a field
//     keyed by its type name.
//   - A struct type of another package is encoded like one of the package
//     when every field it encodes is exported (plain data: a shared
//     money.Amount). One with unexported fields is encoded through its
//     encoding.TextMarshaler (a str) or else BinaryMarshaler (a bin), with
//     the matching Unmarshaler on its pointer (netip.Addr); without them it
//     is an error.
//   - Supported types: bool, string, every int, uint and float width,
//     []byte, time.Time, pointers, slices, arrays, maps whose key is a string
//     or integer kind, types defined over those in any package, and struct
//     types as above (resolved once, recursion allowed through pointers,
//     slices and maps). Anything else is an error naming the field and the
//     type, and saying what to do.
package typemap

import (
	"cmp"
	"fmt"
	"go/token"
	"go/types"
	"reflect"
	"slices"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// Resolver maps struct types of one package to model structs, resolving
// nested same-package structs once.
type Resolver struct {
	pkg    *types.Package
	fset   *token.FileSet
	byObj  map[*types.TypeName]*model.Struct
	order  []resolved
	errors []model.Error
	// codecs holds the codec names given to other packages' structs.
	codecs map[string]bool
}

type resolved struct {
	pos token.Position
	s   *model.Struct
}

// NewResolver returns a Resolver for the struct types declared in pkg, whose
// positions are in fset.
func NewResolver(pkg *types.Package, fset *token.FileSet) *Resolver {
	return &Resolver{pkg: pkg, fset: fset, byObj: map[*types.TypeName]*model.Struct{}, codecs: map[string]bool{}}
}

// Struct returns the model of the named struct type obj declared in the
// package. Nested same-package struct types are resolved and recorded too;
// asking again for a type returns the same *model.Struct. Problems
// (unsupported field types, bad tags) are recorded for Errors, never
// panicked; the returned struct then lacks the offending fields. Struct
// returns nil if obj is not a struct type of the package: reporting that is
// the caller's job.
func (r *Resolver) Struct(obj *types.TypeName) *model.Struct {
	if obj == nil || obj.Pkg() != r.pkg {
		return nil
	}
	if s, ok := r.byObj[obj]; ok {
		return s
	}
	st, ok := obj.Type().Underlying().(*types.Struct)
	if !ok {
		return nil
	}
	pos := r.fset.Position(obj.Pos())
	s := &model.Struct{GoName: obj.Name(), Pos: modelPos(pos)}
	r.byObj[obj] = s // before the fields: recursive types find it
	r.order = append(r.order, resolved{pos: pos, s: s})
	s.Fields = r.fields(obj.Name(), st, pos, map[string]string{}, "", 0)
	r.resolvePII(s)
	return s
}

// maxEmbedding bounds how deep embedded structs are promoted.
const maxEmbedding = 16

// fields returns the encoded fields of st, a struct named owner, with
// embedded structs' fields promoted (their GoName prefixed with the path
// through them). keys maps the wire keys taken so far to their fields.
func (r *Resolver) fields(owner string, st *types.Struct, pos token.Position, keys map[string]string, prefix string, depth int) []*model.Field {
	var out []*model.Field
	for i := 0; i < st.NumFields(); i++ {
		v := st.Field(i)
		key, skip, tagErr := parseTag(st.Tag(i))
		fpos := r.position(v.Pos(), pos)
		where := "field " + owner + "." + prefix + v.Name()
		subject, piiErr := parseCqrsTag(st.Tag(i))
		switch {
		case tagErr != "":
			r.errorf(fpos, "%s: %s", where, tagErr)
			continue
		case piiErr != "":
			r.errorf(fpos, "%s: %s", where, piiErr)
			continue
		case skip:
			continue
		case v.Name() == "_":
			continue
		case v.Embedded() && key == "":
			if _, ok := types.Unalias(v.Type()).(*types.Pointer); ok {
				r.errorf(fpos, "%s: embedded pointers are not supported: embed %s by value (its fields are then promoted) or give the field a name",
					where, r.typeString(v.Type()))
				continue
			}
			if inner, ok := v.Type().Underlying().(*types.Struct); ok {
				if depth >= maxEmbedding {
					r.errorf(fpos, "%s: embedded more than %d levels deep", where, maxEmbedding)
					continue
				}
				if named, ok := types.Unalias(v.Type()).(*types.Named); ok && named.Obj().Pkg() != r.pkg && !r.plain(inner) {
					r.errorf(fpos, "%s: embedded %s has unexported fields, which generated code cannot reach: give the field a name (its type's text or binary marshaler is then used, if it has one) or tag it `msgpack:\"-\"`",
						where, r.typeString(v.Type()))
					continue
				}
				// Promoted, as reflection msgpack and encoding/json do.
				out = append(out, r.fields(owner, inner, pos, keys, prefix+v.Name()+".", depth+1)...)
				continue
			}
		}
		if key == "" {
			key = v.Name()
		}
		if prev, dup := keys[key]; dup {
			r.errorf(fpos, "%s: wire key %q is already used by field %s.%s: rename one or change its msgpack tag",
				where, key, owner, prev)
			continue
		}
		keys[key] = prefix + v.Name()
		t := r.typeOf(v.Type(), fpos, where, v.Type())
		if t == nil {
			continue
		}
		f := &model.Field{GoName: prefix + v.Name(), Key: key, Type: t, Pos: modelPos(fpos)}
		if subject != "" {
			f.PII = &model.PII{SubjectName: subject}
		}
		out = append(out, f)
	}
	return out
}

// plain reports whether every field of st that a codec would encode (not
// skipped by a tag, through embedded structs too) is exported, so that
// code of another package can read and write it.
func (r *Resolver) plain(st *types.Struct) bool {
	for i := 0; i < st.NumFields(); i++ {
		v := st.Field(i)
		if _, skip, _ := parseTag(st.Tag(i)); skip || v.Name() == "_" {
			continue
		}
		if v.Embedded() {
			if inner, ok := v.Type().Underlying().(*types.Struct); ok {
				if !r.plain(inner) {
					return false
				}
				if _, isPtr := types.Unalias(v.Type()).(*types.Pointer); !isPtr {
					continue
				}
			}
		}
		if !v.Exported() {
			return false
		}
	}
	return true
}

// foreign returns the model of obj, a plain-data struct type of another
// package, resolving it once and giving it a codec name unique in the
// generated package.
//
// A problem inside it is reported at the field that uses it (pos, where):
// that is the line the user can change.
func (r *Resolver) foreign(obj *types.TypeName, st *types.Struct, pos0 token.Position, where string) *model.Struct {
	if s, ok := r.byObj[obj]; ok {
		return s
	}
	pos := r.fset.Position(obj.Pos())
	codec := obj.Pkg().Name() + "_" + obj.Name()
	for i := 2; r.codecs[codec] || r.pkg.Scope().Lookup(codec) != nil; i++ {
		codec = fmt.Sprintf("%s_%s%d", obj.Pkg().Name(), obj.Name(), i)
	}
	r.codecs[codec] = true
	s := &model.Struct{GoName: obj.Name(), PkgPath: obj.Pkg().Path(), Codec: codec, Pos: modelPos(pos)}
	r.byObj[obj] = s
	r.order = append(r.order, resolved{pos: pos, s: s})
	before := len(r.errors)
	s.Fields = r.fields(obj.Pkg().Name()+"."+obj.Name(), st, pos, map[string]string{}, "", 0)
	for i := before; i < len(r.errors); i++ {
		r.errors[i] = model.Error{Pos: modelPos(pos0), Msg: fmt.Sprintf("%s: in %s: %s", where, r.typeString(obj.Type()), r.errors[i].Msg)}
	}
	return s
}

// Structs returns every struct resolved so far, sorted by source position,
// each once.
func (r *Resolver) Structs() []*model.Struct {
	o := slices.Clone(r.order)
	slices.SortStableFunc(o, func(a, b resolved) int {
		// Other packages' structs may lack positions: their codec names
		// keep the order deterministic.
		return cmp.Or(comparePos(a.pos, b.pos), cmp.Compare(a.s.CodecName(), b.s.CodecName()))
	})
	out := make([]*model.Struct, len(o))
	for i, x := range o {
		out[i] = x.s
	}
	return out
}

// Errors returns the positioned problems found, sorted by position (then
// message), each once.
func (r *Resolver) Errors() []model.Error {
	e := slices.Clone(r.errors)
	slices.SortStableFunc(e, func(a, b model.Error) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col), cmp.Compare(a.Msg, b.Msg))
	})
	return slices.Compact(e)
}

func comparePos(a, b token.Position) int {
	return cmp.Or(cmp.Compare(a.Filename, b.Filename), cmp.Compare(a.Offset, b.Offset),
		cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
}

func modelPos(p token.Position) model.Pos {
	return model.Pos{File: p.Filename, Line: p.Line, Col: p.Column}
}

func (r *Resolver) position(p token.Pos, fallback token.Position) token.Position {
	if p.IsValid() {
		if pos := r.fset.Position(p); pos.IsValid() {
			return pos
		}
	}
	return fallback
}

func (r *Resolver) errorf(pos token.Position, format string, args ...any) {
	r.errors = append(r.errors, model.Error{Pos: modelPos(pos), Msg: fmt.Sprintf(format, args...)})
}

func (r *Resolver) typeString(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == r.pkg {
			return ""
		}
		return p.Name()
	})
}

// unsupported records the standard error for a type the codec cannot
// encode. t is the offending type, whole the field's full type.
func (r *Resolver) unsupported(pos token.Position, where string, t, whole types.Type, hint string) {
	in := ""
	if !types.Identical(t, whole) {
		in = " in " + r.typeString(whole)
	}
	r.errorf(pos, "%s: unsupported type %s%s: %s", where, r.typeString(t), in, hint)
}

const supportedHint = "the codec encodes bool, string, ints, uints, floats, []byte, time.Time, " +
	"pointers, slices, arrays, maps with string or integer keys, types defined over those, " +
	"struct types (another package's when their fields are exported), and types with text or binary marshalers; " +
	"change the field type or tag it `msgpack:\"-\"`"

// typeOf converts t, reporting problems at pos. It returns nil after
// recording an error.
func (r *Resolver) typeOf(t types.Type, pos token.Position, where string, whole types.Type) *model.Type {
	t = types.Unalias(t)
	switch t := t.(type) {
	case *types.Named:
		return r.named(t, pos, where, whole)
	case *types.Basic:
		k := basicKind(t.Kind())
		if k == model.Invalid {
			if t.Kind() == types.Invalid {
				r.errorf(pos, "%s: its type could not be resolved (a type error in the package, or a type that does not exist yet): fix it or tag the field `msgpack:\"-\"`", where)
				return nil
			}
			r.unsupported(pos, where, t, whole, supportedHint)
			return nil
		}
		return &model.Type{Kind: k}
	case *types.Pointer:
		e := r.typeOf(t.Elem(), pos, where, whole)
		if e == nil {
			return nil
		}
		return &model.Type{Kind: model.Pointer, Elem: e}
	case *types.Slice:
		if b, ok := types.Unalias(t.Elem()).(*types.Basic); ok && b.Kind() == types.Uint8 {
			return &model.Type{Kind: model.Bytes}
		}
		e := r.typeOf(t.Elem(), pos, where, whole)
		if e == nil {
			return nil
		}
		return &model.Type{Kind: model.Slice, Elem: e}
	case *types.Array:
		e := r.typeOf(t.Elem(), pos, where, whole)
		if e == nil {
			return nil
		}
		return &model.Type{Kind: model.Array, Elem: e, Len: t.Len()}
	case *types.Map:
		k := r.typeOf(t.Key(), pos, where, whole)
		if k == nil {
			return nil
		}
		if !isKeyKind(k.Kind) {
			r.unsupported(pos, where, t.Key(), whole, "map keys must be a string or integer kind; change the key type or tag the field `msgpack:\"-\"`")
			return nil
		}
		e := r.typeOf(t.Elem(), pos, where, whole)
		if e == nil {
			return nil
		}
		return &model.Type{Kind: model.Map, Key: k, Elem: e}
	case *types.Struct:
		r.unsupported(pos, where, t, whole, "anonymous struct types are not supported: declare a named struct type in this package and use it")
		return nil
	case *types.Interface:
		r.unsupported(pos, where, t, whole, "interfaces cannot be encoded without reflection: use a concrete type (a struct of this package, or one field per variant)")
		return nil
	case *types.Chan, *types.Signature:
		r.unsupported(pos, where, t, whole, "channels and funcs cannot be stored in an event or state: remove the field or tag it `msgpack:\"-\"`")
		return nil
	case *types.TypeParam:
		r.unsupported(pos, where, t, whole, "type parameters are not supported: use a concrete type")
		return nil
	}
	r.unsupported(pos, where, t, whole, supportedHint)
	return nil
}

func (r *Resolver) named(t *types.Named, pos token.Position, where string, whole types.Type) *model.Type {
	obj := t.Obj()
	if obj.Pkg() == nil { // error, comparable
		r.unsupported(pos, where, t, whole, supportedHint)
		return nil
	}
	if t.TypeArgs().Len() > 0 {
		r.unsupported(pos, where, t, whole, "generic types are not supported: declare a non-generic type")
		return nil
	}
	own := obj.Pkg() == r.pkg
	if !own && !obj.Exported() {
		r.unsupported(pos, where, t, whole, "the type is unexported in its package, so generated code cannot name it")
		return nil
	}
	if !own && obj.Pkg().Path() == "time" && obj.Name() == "Time" {
		return &model.Type{Kind: model.Time, Name: "Time", PkgPath: "time"}
	}
	path := obj.Pkg().Path()
	if own {
		path = ""
	}
	switch u := t.Underlying().(type) {
	case *types.Struct:
		if !own {
			if k := marshaler(t); k != model.Invalid {
				// The package's own encoding wins: its fields are its
				// business (and may be unexported).
				return &model.Type{Kind: k, Name: obj.Name(), PkgPath: path}
			}
			if !r.plain(u) {
				r.unsupported(pos, where, t, whole, "it has unexported fields, which generated code cannot reach, and no encoding.TextMarshaler or BinaryMarshaler (with the Unmarshaler on its pointer) to store it by: use a type with exported fields or those methods, or tag the field `msgpack:\"-\"`")
				return nil
			}
			return &model.Type{Kind: model.StructKind, Name: obj.Name(), PkgPath: path, Struct: r.foreign(obj, u, pos, where)}
		}
		s := r.Struct(obj)
		if s == nil {
			r.unsupported(pos, where, t, whole, supportedHint)
			return nil
		}
		return &model.Type{Kind: model.StructKind, Name: obj.Name(), Struct: s}
	case *types.Interface:
		r.unsupported(pos, where, t, whole, "interfaces cannot be encoded without reflection: use a concrete type (a struct of this package, or one field per variant)")
		return nil
	default:
		m := r.typeOf(u, pos, where, whole)
		if m == nil {
			return nil
		}
		m.Name, m.PkgPath = obj.Name(), path
		return m
	}
}

// marshaler returns Text when *t has MarshalText() ([]byte, error) and
// UnmarshalText([]byte) error, else Binary for the binary pair, else
// Invalid.
func marshaler(t *types.Named) model.Kind {
	for _, m := range []struct {
		kind             model.Kind
		marshal, unmarsh string
	}{{model.Text, "MarshalText", "UnmarshalText"}, {model.Binary, "MarshalBinary", "UnmarshalBinary"}} {
		// Pointer methods are fine: the codec calls them on addressable
		// values (fields, elements, locals).
		if hasMethod(types.NewPointer(t), m.marshal, false) && hasMethod(types.NewPointer(t), m.unmarsh, true) {
			return m.kind
		}
	}
	return model.Invalid
}

// hasMethod reports whether t has method name with the marshal signature
// func() ([]byte, error), or with unmarshal the signature func([]byte) error.
func hasMethod(t types.Type, name string, unmarshal bool) bool {
	obj, _, _ := types.LookupFieldOrMethod(t, false, nil, name)
	fn, ok := obj.(*types.Func)
	if !ok {
		return false
	}
	sig := fn.Type().(*types.Signature)
	isBytes := func(t types.Type) bool {
		s, ok := t.Underlying().(*types.Slice)
		if !ok {
			return false
		}
		b, ok := types.Unalias(s.Elem()).(*types.Basic)
		return ok && b.Kind() == types.Byte
	}
	isError := func(t types.Type) bool { return types.Identical(t, types.Universe.Lookup("error").Type()) }
	if unmarshal {
		return sig.Params().Len() == 1 && isBytes(sig.Params().At(0).Type()) && sig.Results().Len() == 1 && isError(sig.Results().At(0).Type())
	}
	return sig.Params().Len() == 0 && sig.Results().Len() == 2 && isBytes(sig.Results().At(0).Type()) && isError(sig.Results().At(1).Type())
}

func isKeyKind(k model.Kind) bool {
	return k == model.String || (k >= model.Int && k <= model.Uint64)
}

func basicKind(k types.BasicKind) model.Kind {
	switch k {
	case types.Bool:
		return model.Bool
	case types.Int:
		return model.Int
	case types.Int8:
		return model.Int8
	case types.Int16:
		return model.Int16
	case types.Int32:
		return model.Int32
	case types.Int64:
		return model.Int64
	case types.Uint:
		return model.Uint
	case types.Uint8:
		return model.Uint8
	case types.Uint16:
		return model.Uint16
	case types.Uint32:
		return model.Uint32
	case types.Uint64:
		return model.Uint64
	case types.Float32:
		return model.Float32
	case types.Float64:
		return model.Float64
	case types.String:
		return model.String
	}
	return model.Invalid // uintptr, complex, unsafe.Pointer, untyped, invalid
}

// parseTag returns the wire key of a struct tag's msgpack entry ("" for the
// field name), whether the field is skipped, and a problem description.
func parseTag(tag string) (key string, skip bool, problem string) {
	v, ok := reflect.StructTag(tag).Lookup("msgpack")
	if !ok {
		return "", false, ""
	}
	if v == "-" {
		return "", true, ""
	}
	name, opts, _ := strings.Cut(v, ",")
	for o := range strings.SplitSeq(opts, ",") {
		switch o {
		case "", "omitempty":
		default:
			return "", false, fmt.Sprintf("msgpack tag option %q is not supported: remove it (only a name, \"-\" and omitempty are understood)", o)
		}
	}
	return name, false, ""
}
