// Package model is the plain description of a user package that sits
// between parsing and emitting: directives resolved, types classified,
// everything in source order. It holds no go/ast or go/types values, so
// emitters are pure functions of it and tests can build one by hand.
package model

import "fmt"

// Pos is a source position. String formats it as file:line:col, the form
// every generator error starts with.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Package is one user package to generate cqrs_gen.go for.
type Package struct {
	// Path is the import path, Name the package name, Dir its directory.
	Path, Name, Dir string
	// Aggregates in source order.
	Aggregates []*Aggregate
	// Structs lists every struct type that needs a codec (event types,
	// aggregate states and the same-package struct types they use), in
	// source order, each once.
	Structs []*Struct
	// Projections in source order (see projection.go).
	Projections []*Projection
	// Sagas in source order (see saga.go).
	Sagas []*Saga
}

// Aggregate is a type annotated //cqrs:aggregate.
type Aggregate struct {
	// GoName is the state type's Go identifier; WireName the stable stream
	// type name (name= option, default GoName).
	GoName, WireName string
	// SnapshotEvery is the snapshot=N option, 0 for none.
	SnapshotEvery uint64
	// State is the state struct (its codec is used for snapshots).
	State *Struct
	// Events and Commands in source order.
	Events   []*Event
	Commands []*Command
	// Retired are stored events of no current type (//cqrs:retired): the
	// repository skips them on read, counting their versions.
	Retired []Retired
	Pos     Pos
}

// Retired is one stored event form an aggregate no longer has a type for.
type Retired struct {
	WireName string
	Version  uint32
	// Pos is the position of the //cqrs:retired directive.
	Pos Pos
}

// Event is a type annotated //cqrs:event A.
type Event struct {
	// GoName is the Go identifier; WireName the stable name (name= option,
	// default GoName).
	GoName, WireName string
	// Version is the schema version (version= option, default 1).
	Version uint32
	// Struct is the event's fields.
	Struct *Struct
	// FormerNames are older wire names that decode into this event (an
	// upcaster renamed them), in source order. Projections and sagas
	// consume them too.
	FormerNames []string
	// Upcasts are the older stored forms that decode into this event
	// through //cqrs:upcast funcs (see upcast.go): the current wire name's
	// older versions first, then each former name, versions ascending.
	Upcasts []*Upcast
	Pos     Pos
}

// Command is a type annotated //cqrs:command A.
type Command struct {
	GoName string
	// PointerReceiver reports whether Handle<Command> is declared on *A.
	PointerReceiver bool
	Pos             Pos
}

// Struct is a struct type that gets a codec: one of the package, or a
// plain-data struct of another package (every encoded field exported).
type Struct struct {
	GoName string
	// PkgPath is the import path of a struct of another package, empty for
	// the package's own.
	PkgPath string
	// Codec names the struct's codec functions (cqrsAppend<Codec>, …):
	// GoName when empty; unique in the package for another package's struct.
	Codec  string
	Fields []*Field
	Pos    Pos
}

// CodecName returns the name its codec functions are built from.
func (s *Struct) CodecName() string {
	if s.Codec != "" {
		return s.Codec
	}
	return s.GoName
}

// Field is one encoded field of a Struct.
type Field struct {
	// GoName is the field's Go identifier, or the selector path through
	// embedded structs whose fields are promoted (Base.ID).
	GoName string
	// Key is its wire key (the field name, or the name in a msgpack struct
	// tag).
	Key  string
	Type *Type
	Pos  Pos
	// PII is the field's `cqrs:"pii=…"` tag: the field is stored sealed
	// under its subject's data key (see pii.go). Nil for other fields.
	PII *PII
}

// Kind classifies a field type for the codec.
type Kind int

// The kinds a codec can encode.
const (
	Invalid Kind = iota
	Bool
	Int
	Int8
	Int16
	Int32
	Int64
	Uint
	Uint8
	Uint16
	Uint32
	Uint64
	Float32
	Float64
	String
	Bytes // []byte (or a named type over it)
	Time  // time.Time
	Pointer
	Slice
	Array
	Map
	StructKind // a struct type with a generated codec (Type.Struct)
	// Text is a type of another package implementing
	// encoding.TextMarshaler and (on its pointer) TextUnmarshaler, whose
	// fields generated code cannot reach: stored as a str (netip.Addr).
	Text
	// Binary is the same with encoding.BinaryMarshaler/Unmarshaler, stored
	// as a bin, for a type without the text methods.
	Binary
)

var kindNames = [...]string{
	Invalid: "invalid", Bool: "bool", Int: "int", Int8: "int8", Int16: "int16", Int32: "int32",
	Int64: "int64", Uint: "uint", Uint8: "uint8", Uint16: "uint16", Uint32: "uint32",
	Uint64: "uint64", Float32: "float32", Float64: "float64", String: "string", Bytes: "bytes",
	Time: "time", Pointer: "pointer", Slice: "slice", Array: "array", Map: "map", StructKind: "struct",
	Text: "text", Binary: "binary",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Type is a field type as the codec sees it.
type Type struct {
	Kind Kind
	// Name and PkgPath name a defined type (Cents over int64, Tags over
	// []string, Address for a struct, Time for time.Time). Name is empty
	// for unnamed types; PkgPath is empty for types of the generated
	// package itself.
	Name, PkgPath string
	// Elem is the element type of Pointer, Slice, Array and Map.
	Elem *Type
	// Key is the key type of Map (a string or integer kind).
	Key *Type
	// Len is the length of Array.
	Len int64
	// Struct is the struct of StructKind.
	Struct *Struct
}

// Error is a problem in the user's package, positioned at the construct it
// is about. Every generator error is one of these so that all problems can
// be collected, sorted and printed as file:line:col: message.
type Error struct {
	Pos Pos
	Msg string
}

func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }
