package typemap

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// One file set and source importer for all tests, so that imported
// packages are type-checked once.
var (
	fset           = token.NewFileSet()
	sourceImporter = importer.ForCompiler(fset, "source", nil)
)

// check type-checks src as package p (file p.go), tolerating type errors as
// the generator must, and resolves the named struct types.
func check(t *testing.T, src string, names ...string) (*Resolver, []*model.Struct) {
	t.Helper()
	f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: sourceImporter, Error: func(error) {}}
	pkg, _ := conf.Check("example.com/p", fset, []*ast.File{f}, nil)
	r := NewResolver(pkg, fset)
	var out []*model.Struct
	for _, n := range names {
		tn, ok := pkg.Scope().Lookup(n).(*types.TypeName)
		if !ok {
			t.Fatalf("no type %s", n)
		}
		out = append(out, r.Struct(tn))
	}
	return r, out
}

func errorLines(r *Resolver) []string {
	var out []string
	for _, e := range r.Errors() {
		out = append(out, e.Error())
	}
	return out
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string // the struct body of type E, at line 4 of p.go
		want []string
	}{
		{"chan", "C chan int", []string{"p.go:4:2: field E.C: unsupported type chan int: channels and funcs"}},
		{"func in slice", "F []func()", []string{"p.go:4:2: field E.F: unsupported type func() in []func(): channels and funcs"}},
		{"interface", "I any", []string{"p.go:4:2: field E.I: unsupported type any: interfaces cannot be encoded"}},
		{"error", "Err error", []string{"p.go:4:2: field E.Err: unsupported type error: the codec encodes"}},
		{"complex", "Z complex128", []string{"p.go:4:2: field E.Z: unsupported type complex128: the codec encodes"}},
		{"uintptr", "U uintptr", []string{"p.go:4:2: field E.U: unsupported type uintptr:"}},
		{"unsafe pointer", "P unsafe.Pointer", []string{"p.go:4:2: field E.P: unsupported type unsafe.Pointer:"}},
		{"float key", "M map[float64]string", []string{"p.go:4:2: field E.M: unsupported type float64 in map[float64]string: map keys must be a string or integer kind"}},
		{"struct key", "M map[Inner]string", []string{"p.go:4:2: field E.M: unsupported type Inner in map[Inner]string: map keys"}},
		{"other package struct with unexported fields", "B strings.Builder", []string{"p.go:4:2: field E.B: unsupported type strings.Builder: it has unexported fields, which generated code cannot reach, and no encoding.TextMarshaler or BinaryMarshaler"}},
		{"anonymous struct", "A struct{ X int }", []string{"p.go:4:2: field E.A: unsupported type struct{X int}: anonymous struct types"}},
		{"embedded pointer", "*Inner", []string{"p.go:4:3: field E.Inner: embedded pointers are not supported: embed *Inner by value"}},
		{"embedded opaque struct of another package", "strings.Builder", []string{"p.go:4:10: field E.Builder: embedded strings.Builder has unexported fields"}},
		{"promoted key clash", "Inner\n\tX int", []string{"p.go:5:2: field E.X: wire key \"X\" is already used by field E.Inner.X"}},
		{"unresolved", "Ev AccountEvent", []string{"p.go:4:2: field E.Ev: its type could not be resolved"}},
		{"bad option", "X int `msgpack:\"x,inline\"`", []string{"p.go:4:2: field E.X: msgpack tag option \"inline\" is not supported"}},
		{"duplicate key", "A int `msgpack:\"k\"`\n\tB int `msgpack:\"k\"`", []string{"p.go:5:2: field E.B: wire key \"k\" is already used by field E.A"}},
		{"generic", "G Box[int]", []string{"p.go:4:2: field E.G: unsupported type Box[int]: generic types are not supported"}},
		{"nested bad field", "In Bad", []string{"p.go:13:18: field Bad.C: unsupported type chan bool"}},
		{"several sorted", "Z complex64\n\tOK int\n\tC chan int", []string{
			"p.go:4:2: field E.Z: unsupported type complex64:", "p.go:6:2: field E.C: unsupported type chan int:"}},
		{"skipped by tag", "C chan int `msgpack:\"-\"`", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf("package p\nimport (\"strings\"; \"unsafe\")\ntype E struct {\n\t%s\n}\n"+
				"var _ strings.Builder\nvar _ unsafe.Pointer\n"+
				"type Inner struct{ X int }\n\n\ntype Box[T any] struct{ V T }\n\ntype Bad struct{ C chan bool }\n", c.src)
			r, _ := check(t, src, "E")
			got := errorLines(r)
			if len(got) != len(c.want) {
				t.Fatalf("got %d errors %q, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestSupported(t *testing.T) {
	src := `package p

import (
	"time"
	"example.com/p/dummy"
)

type Cents int64
type Tags []string
type Alias = time.Time

type E struct {
	Name     string
	Amount   Cents
	D        time.Duration
	At       Alias
	Tags     Tags
	Raw      []byte
	Hash     [32]byte
	ByID     map[uint16]*Node
	Renamed  int ` + "`msgpack:\"r,omitempty\"`" + `
	skip     int ` + "`msgpack:\"-\"`" + `
	hidden   bool
	_        int
	Ev       AccountEvent ` + "`msgpack:\"-\"`" + `
	X        dummy.T ` + "`msgpack:\"-\"`" + `
}

// Node is recursive.
type Node struct {
	Next *Node
	Kids []Node
}

func (e E) Events() []AccountEvent { return nil }
`
	r, structs := check(t, src, "E")
	if errs := errorLines(r); len(errs) != 0 {
		t.Fatalf("unexpected errors: %q", errs)
	}
	e := structs[0]
	var got []string
	for _, f := range e.Fields {
		got = append(got, fmt.Sprintf("%s:%s:%s", f.GoName, f.Key, typeString(f.Type)))
	}
	want := []string{
		"Name:Name:string", "Amount:Amount:Cents(int64)", "D:D:time.Duration(int64)", "At:At:time.Time(time)",
		"Tags:Tags:Tags(slice of string)", "Raw:Raw:bytes", "Hash:Hash:array 32 of uint8",
		"ByID:ByID:map uint16 to pointer to Node(struct)", "Renamed:r:int", "hidden:hidden:bool",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Node is resolved once, recorded after E (source order), and its
	// recursive fields point back at the same *model.Struct.
	all := r.Structs()
	if len(all) != 2 || all[0] != e || all[1].GoName != "Node" {
		t.Fatalf("Structs() = %v", all)
	}
	node := all[1]
	if node.Fields[0].Type.Elem.Struct != node || node.Fields[1].Type.Elem.Struct != node {
		t.Error("recursive fields do not point at their own struct")
	}
	if e.Pos != (model.Pos{File: "p.go", Line: 12, Col: 6}) {
		t.Errorf("E.Pos = %v", e.Pos)
	}
	if again := r.Struct(lookup(t, r, "Node")); again != node {
		t.Error("second Struct call resolved Node again")
	}
}

// TestOtherPackages: plain-data structs of other packages get a codec of
// their own (named after their package), types with unexported fields go
// through their text or binary marshalers, embedded structs are promoted,
// and unexported fields of the package's own structs are encoded.
func TestOtherPackages(t *testing.T) {
	src := `package p

import (
	"image"
	"net/netip"
	"net/url"
	"time"
)

type Base struct {
	ID      string
	Created time.Time
}

type E struct {
	Base
	image.Point
	Addr    netip.Addr
	Prefix  *netip.Prefix
	Where   image.Rectangle
	Link    url.URL
	Form    url.Values
	secret  string
}
`
	r, structs := check(t, src, "E")
	if errs := errorLines(r); len(errs) != 0 {
		t.Fatalf("unexpected errors: %q", errs)
	}
	var got []string
	for _, f := range structs[0].Fields {
		got = append(got, fmt.Sprintf("%s:%s:%s", f.GoName, f.Key, typeString(f.Type)))
	}
	want := []string{
		"Base.ID:ID:string", "Base.Created:Created:time.Time(time)",
		"Point.X:X:int", "Point.Y:Y:int",
		"Addr:Addr:net/netip.Addr(text)", "Prefix:Prefix:pointer to net/netip.Prefix(text)",
		"Where:Where:image.Rectangle(struct)", "Link:Link:net/url.URL(binary)", "Form:Form:net/url.Values(map string to slice of string)", "secret:secret:string",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var codecs []string
	for _, s := range r.Structs() {
		codecs = append(codecs, s.PkgPath+" "+s.GoName+" "+s.CodecName())
	}
	// image.Rectangle holds two image.Points: each gets one codec.
	wantCodecs := []string{"image Point image_Point", "image Rectangle image_Rectangle", " E E"}
	if strings.Join(codecs, ",") != strings.Join(wantCodecs, ",") {
		t.Errorf("codecs %q, want %q", codecs, wantCodecs)
	}
}

// TestOtherPackageProblemsAtTheUse: a problem inside another package's
// struct is reported at the field of this package that uses it.
func TestOtherPackageProblemsAtTheUse(t *testing.T) {
	src := "package p\n\nimport \"image\"\n\ntype E struct {\n\tU image.Uniform\n}\n"
	r, _ := check(t, src, "E")
	want := "p.go:6:2: field E.U: in image.Uniform: field image.Uniform.C: unsupported type color.Color: interfaces cannot be encoded"
	if errs := errorLines(r); len(errs) != 1 || !strings.HasPrefix(errs[0], want) {
		t.Errorf("errors %q, want one starting %q", errs, want)
	}
}

func TestNotAStruct(t *testing.T) {
	r, got := check(t, "package p\ntype N int\n", "N")
	if got[0] != nil || len(r.Errors()) != 0 || len(r.Structs()) != 0 {
		t.Errorf("non-struct: %v %v", got[0], r.Errors())
	}
}

func lookup(t *testing.T, r *Resolver, name string) *types.TypeName {
	t.Helper()
	tn, ok := r.pkg.Scope().Lookup(name).(*types.TypeName)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return tn
}

func typeString(t *model.Type) string {
	var s string
	switch t.Kind {
	case model.Pointer:
		s = "pointer to " + typeString(t.Elem)
	case model.Slice:
		s = "slice of " + typeString(t.Elem)
	case model.Array:
		s = fmt.Sprintf("array %d of %s", t.Len, typeString(t.Elem))
	case model.Map:
		s = "map " + typeString(t.Key) + " to " + typeString(t.Elem)
	default:
		s = t.Kind.String()
	}
	if t.Name != "" {
		name := t.Name
		if t.PkgPath != "" {
			name = t.PkgPath + "." + name
		}
		return name + "(" + s + ")"
	}
	return s
}
