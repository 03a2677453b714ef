// Package lock reads, writes and checks cqrs.lock, the schema lock file
// cqrsgen keeps beside each generated package.
//
// The lock records the stored shape of every aggregate state, event, saga
// state and upcaster input of the package: one line each, sorted, with the
// stream type, the wire name and schema version, the Go type (for readers
// only) and the fields as wire key:kind, recursively (see KindSaga for
// saga states):
//
//	# cqrsgen schema lock v1
//	state  bank.account Account {Owner:string Balance:int64 OpenedAt:time}
//	event  bank.account bank.account.deposited@1 DepositedV1 {Amount:int64}
//	event  bank.account bank.account.deposited@2 Deposited {Amount:int64 Currency:string}
//
// cqrsgen compares the package against it before writing anything:
// compatible changes (added fields, widened numbers, reordered fields, a
// changed state shape, new events) just rewrite the lock; a change that
// would stop stored data from decoding as before (a removed, renamed or
// retyped field, a changed or vanished wire name or stream type, a version
// going down, a dropped upcaster) is a positioned error unless the caller
// accepts breaking changes.
package lock

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// FileName is the lock file's base name, in the package directory.
const FileName = "cqrs.lock"

// Header is the lock's first line; it names the format version.
const Header = "# cqrsgen schema lock v1"

// The kinds of entries.
const (
	KindState  = "state"  // an aggregate's state (snapshots)
	KindEvent  = "event"  // a current event type
	KindUpcast = "upcast" // an older stored form, read by an upcaster
	// KindRetired is a stored form no type reads (//cqrs:retired): its Go
	// type is the aggregate's and its shape {}, since nothing decodes it.
	KindRetired = "retired"
)

// Entry is one line of the lock: the stored shape of one type.
type Entry struct {
	Kind string
	// Stream is the aggregate's stream type name.
	Stream string
	// Name and Version are the wire name and schema version (events and
	// upcast inputs).
	Name    string
	Version uint32
	// GoName is the Go type, for readers of the lock (renaming it is
	// compatible).
	GoName string
	Shape  *Shape
	// Line is the entry's line in a parsed lock; Pos the type's position
	// in the package for entries built from a model.
	Line int
	Pos  model.Pos
}

func (e *Entry) key() string {
	if e.Kind == KindState {
		return e.Stream
	}
	return e.Stream + " " + e.ident()
}

func (e *Entry) describe() string {
	if e.Kind == KindState {
		return "the state of stream type " + strconv.Quote(e.Stream)
	}
	return e.ident() + " of stream type " + strconv.Quote(e.Stream)
}

func (e *Entry) ident() string { return e.Name + "@" + strconv.FormatUint(uint64(e.Version), 10) }

// Shape is a field type as the lock records it.
type Shape struct {
	// Kind is a model.Kind name ("int64", "string", "time", …), or
	// "pointer", "slice", "array", "map", "struct", and "ref" for a
	// back-reference to an enclosing struct (recursive types).
	Kind string
	// Elem and Key are the element and key types.
	Elem, Key *Shape
	// Len is an array's length; Ref a back-reference's depth.
	Len, Ref int64
	Fields   []*Field
	// Subject is the wire key of the subject field of a field tagged pii,
	// whose shape is Kind "pii" with Elem the field's type (see pii.go).
	Subject string
}

// Field is one field of a struct shape.
type Field struct {
	Key  string
	Type *Shape
	// Pos is the field's position in the package (model side only).
	Pos model.Pos
}

// Entries returns the lock entries of pkg, sorted.
func Entries(pkg *model.Package) []*Entry {
	var out []*Entry
	for _, a := range pkg.Aggregates {
		out = append(out, &Entry{Kind: KindState, Stream: a.WireName, GoName: a.GoName, Shape: shapeOf(a.State), Pos: a.Pos})
		for _, e := range a.Events {
			out = append(out, &Entry{Kind: KindEvent, Stream: a.WireName, Name: e.WireName, Version: e.Version,
				GoName: e.GoName, Shape: shapeOf(e.Struct), Pos: e.Pos})
			for _, u := range e.Upcasts {
				out = append(out, &Entry{Kind: KindUpcast, Stream: a.WireName, Name: u.WireName, Version: u.Version,
					GoName: u.Struct.GoName, Shape: shapeOf(u.Struct), Pos: u.Struct.Pos})
			}
		}
		for _, r := range a.Retired {
			out = append(out, &Entry{Kind: KindRetired, Stream: a.WireName, Name: r.WireName, Version: r.Version,
				GoName: a.GoName, Shape: &Shape{Kind: "struct"}, Pos: r.Pos})
		}
	}
	out = append(out, sagaEntries(pkg)...)
	sortEntries(out)
	return out
}

func sortEntries(es []*Entry) {
	rank := func(k string) int {
		if k == KindState {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(es, func(a, b *Entry) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(rank(a.Kind), rank(b.Kind)),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
}

// shapeOf converts a model struct, writing a struct met again inside
// itself as a back-reference to its depth.
func shapeOf(s *model.Struct) *Shape {
	return structShape(s, map[*model.Struct]int64{})
}

func structShape(s *model.Struct, open map[*model.Struct]int64) *Shape {
	if s == nil {
		return &Shape{Kind: "struct"}
	}
	if d, ok := open[s]; ok {
		return &Shape{Kind: "ref", Ref: d}
	}
	open[s] = int64(len(open))
	sh := &Shape{Kind: "struct"}
	for _, f := range s.Fields {
		sh.Fields = append(sh.Fields, &Field{Key: f.Key, Type: piiShape(f, typeShape(f.Type, open)), Pos: f.Pos})
	}
	delete(open, s)
	return sh
}

func typeShape(t *model.Type, open map[*model.Struct]int64) *Shape {
	switch t.Kind {
	case model.Pointer, model.Slice:
		return &Shape{Kind: t.Kind.String(), Elem: typeShape(t.Elem, open)}
	case model.Array:
		return &Shape{Kind: "array", Len: t.Len, Elem: typeShape(t.Elem, open)}
	case model.Map:
		return &Shape{Kind: "map", Key: typeShape(t.Key, open), Elem: typeShape(t.Elem, open)}
	case model.StructKind:
		return structShape(t.Struct, open)
	}
	return &Shape{Kind: t.Kind.String()}
}

// Render returns the lock file holding entries (already sorted).
func Render(entries []*Entry) []byte {
	var b strings.Builder
	b.WriteString(Header + "\n")
	b.WriteString("# Written by cqrsgen beside the generated code: commit it. It records the stored\n")
	b.WriteString("# shape of every aggregate state, event, saga state and upcaster input; cqrsgen refuses\n")
	b.WriteString("# changes that old data could not be read with (see docs/directives.md).\n")
	b.WriteString("# kind stream wire-name@version GoType {wire-key:kind …}\n")
	for _, e := range entries {
		b.WriteString(e.Kind)
		b.WriteString(strings.Repeat(" ", max(len(KindUpcast)-len(e.Kind)+1, 1)))
		b.WriteString(token(e.Stream))
		if e.Kind != KindState {
			b.WriteString(" " + token(e.Name) + "@" + strconv.FormatUint(uint64(e.Version), 10))
		}
		b.WriteString(" " + e.GoName + " ")
		b.WriteString(e.Shape.String())
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// token quotes s unless it is a plain word (no spaces, quotes or control
// characters, not starting a comment).
func token(s string) string {
	plain := s != "" && !strings.HasPrefix(s, "#")
	for _, r := range s {
		if r <= ' ' || r == '"' || r == 0x7f || !strconv.IsPrint(r) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

// String renders a shape in the lock's field syntax.
func (s *Shape) String() string {
	var b strings.Builder
	s.write(&b)
	return b.String()
}

func (s *Shape) write(b *strings.Builder) {
	switch s.Kind {
	case "struct":
		b.WriteString("{")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(key(f.Key) + ":")
			f.Type.write(b)
		}
		b.WriteString("}")
	case "ref":
		b.WriteString("^" + strconv.FormatInt(s.Ref, 10))
	case "pii":
		b.WriteString("pii(" + key(s.Subject) + ")")
		s.Elem.write(b)
	case "pointer":
		b.WriteString("*")
		s.Elem.write(b)
	case "slice":
		b.WriteString("[]")
		s.Elem.write(b)
	case "array":
		b.WriteString("[" + strconv.FormatInt(s.Len, 10) + "]")
		s.Elem.write(b)
	case "map":
		b.WriteString("map[")
		s.Key.write(b)
		b.WriteString("]")
		s.Elem.write(b)
	default:
		b.WriteString(s.Kind)
	}
}

// key writes a wire key bare when it is an identifier, quoted otherwise.
func key(k string) string {
	for i, r := range k {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return strconv.Quote(k)
	}
	if k == "" {
		return `""`
	}
	return k
}

// Parse reads a lock file. path is used in the positions of the errors.
func Parse(path string, data []byte) ([]*Entry, []model.Error) {
	var out []*Entry
	var errs []model.Error
	seen := map[string]*Entry{}
	lines := strings.Split(string(data), "\n")
	if strings.TrimRight(lines[0], "\r") != Header {
		return nil, []model.Error{{Pos: model.Pos{File: path, Line: 1, Col: 1},
			Msg: fmt.Sprintf("%s does not start with %q: it is not a cqrsgen schema lock of this format; fix it from version control, or run with -accept-breaking to write it anew", FileName, Header)}}
	}
	for i, line := range lines {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, col, err := parseLine(line)
		if err != nil {
			errs = append(errs, model.Error{Pos: model.Pos{File: path, Line: i + 1, Col: col + 1},
				Msg: fmt.Sprintf("cannot read %s: %v; fix the line (a merge conflict?), or run with -accept-breaking to write the lock anew", FileName, err)})
			continue
		}
		e.Line = i + 1
		if prev := seen[e.key()]; prev != nil {
			errs = append(errs, model.Error{Pos: model.Pos{File: path, Line: e.Line, Col: 1},
				Msg: fmt.Sprintf("%s records %s twice (also line %d); keep the line that matches the stored data (a merge conflict?), or run with -accept-breaking to write the lock anew", FileName, e.describe(), prev.Line)})
			continue
		}
		seen[e.key()] = e
		out = append(out, e)
	}
	return out, errs
}

// lineParser reads one line left to right.
type lineParser struct {
	s   string
	off int
}

func (p *lineParser) errorf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

func (p *lineParser) spaces() {
	for p.off < len(p.s) && (p.s[p.off] == ' ' || p.s[p.off] == '\t') {
		p.off++
	}
}

// word reads a bare or quoted token.
func (p *lineParser) word(what string) (string, error) {
	p.spaces()
	if p.off >= len(p.s) {
		return "", p.errorf("missing %s", what)
	}
	if p.s[p.off] == '"' {
		q, err := strconv.QuotedPrefix(p.s[p.off:])
		if err != nil {
			return "", p.errorf("bad quoted %s", what)
		}
		p.off += len(q)
		v, _ := strconv.Unquote(q)
		return v, nil
	}
	start := p.off
	for p.off < len(p.s) && p.s[p.off] != ' ' && p.s[p.off] != '\t' {
		p.off++
	}
	return p.s[start:p.off], nil
}

func parseLine(line string) (e *Entry, col int, err error) {
	p := &lineParser{s: line}
	fail := func(err error) (*Entry, int, error) { return nil, p.off, err }
	e = &Entry{}
	if e.Kind, err = p.word("kind"); err != nil {
		return fail(err)
	}
	switch e.Kind {
	case KindState, KindEvent, KindUpcast, KindSaga, KindRetired:
	default:
		p.off = 0
		return fail(p.errorf("unknown entry kind %q (want %s, %s, %s, %s or %s)", e.Kind, KindState, KindEvent, KindSaga, KindUpcast, KindRetired))
	}
	if e.Stream, err = p.word("stream type"); err != nil {
		return fail(err)
	}
	if e.Kind != KindState {
		p.spaces()
		start := p.off
		var ident string
		if p.off < len(p.s) && p.s[p.off] == '"' {
			if e.Name, err = p.word("wire name"); err != nil {
				return fail(err)
			}
			rest, err := p.word("version")
			if err != nil || !strings.HasPrefix(rest, "@") {
				p.off = start
				return fail(p.errorf("want wire-name@version"))
			}
			ident = rest[1:]
		} else {
			w, err := p.word("wire name")
			if err != nil {
				return fail(err)
			}
			i := strings.LastIndexByte(w, '@')
			if i <= 0 {
				p.off = start
				return fail(p.errorf("want wire-name@version, have %q", w))
			}
			e.Name, ident = w[:i], w[i+1:]
		}
		v, err := strconv.ParseUint(ident, 10, 32)
		if err != nil || v == 0 {
			p.off = start
			return fail(p.errorf("bad schema version %q", ident))
		}
		e.Version = uint32(v)
	}
	if e.GoName, err = p.word("Go type"); err != nil {
		return fail(err)
	}
	p.spaces()
	if p.off >= len(p.s) || p.s[p.off] != '{' {
		return fail(p.errorf("want {fields}"))
	}
	if e.Shape, err = p.shape(0); err != nil {
		return fail(err)
	}
	p.spaces()
	if p.off != len(p.s) {
		return fail(p.errorf("unexpected %q after the fields", p.s[p.off:]))
	}
	return e, 0, nil
}

// maxDepth bounds nesting in a parsed shape.
const maxDepth = 100

func (p *lineParser) shape(depth int) (*Shape, error) {
	if depth > maxDepth {
		return nil, p.errorf("types nested deeper than %d", maxDepth)
	}
	if p.off >= len(p.s) {
		return nil, p.errorf("missing type")
	}
	rest := p.s[p.off:]
	switch {
	case rest[0] == '{':
		p.off++
		s := &Shape{Kind: "struct"}
		for {
			if p.off < len(p.s) && p.s[p.off] == '}' {
				p.off++
				return s, nil
			}
			if len(s.Fields) > 0 {
				if p.off >= len(p.s) || p.s[p.off] != ' ' {
					return nil, p.errorf("want a space or } between fields")
				}
				p.off++
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			if p.off >= len(p.s) || p.s[p.off] != ':' {
				return nil, p.errorf("want : after field %q", k)
			}
			p.off++
			t, err := p.shape(depth + 1)
			if err != nil {
				return nil, err
			}
			s.Fields = append(s.Fields, &Field{Key: k, Type: t})
		}
	case strings.HasPrefix(rest, "pii("):
		return p.pii(depth)
	case rest[0] == '^':
		p.off++
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		return &Shape{Kind: "ref", Ref: n}, nil
	case rest[0] == '*':
		p.off++
		e, err := p.shape(depth + 1)
		return &Shape{Kind: "pointer", Elem: e}, err
	case strings.HasPrefix(rest, "[]"):
		p.off += 2
		e, err := p.shape(depth + 1)
		return &Shape{Kind: "slice", Elem: e}, err
	case rest[0] == '[':
		p.off++
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		if p.off >= len(p.s) || p.s[p.off] != ']' {
			return nil, p.errorf("want ] after array length")
		}
		p.off++
		e, err := p.shape(depth + 1)
		return &Shape{Kind: "array", Len: n, Elem: e}, err
	case strings.HasPrefix(rest, "map["):
		p.off += 4
		k, err := p.shape(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.off >= len(p.s) || p.s[p.off] != ']' {
			return nil, p.errorf("want ] after map key type")
		}
		p.off++
		e, err := p.shape(depth + 1)
		return &Shape{Kind: "map", Key: k, Elem: e}, err
	}
	start := p.off
	for p.off < len(p.s) {
		c := p.s[p.off]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9' || p.off == start) {
			break
		}
		p.off++
	}
	k := p.s[start:p.off]
	if !basic[k] {
		p.off = start
		return nil, p.errorf("unknown kind %q", k)
	}
	return &Shape{Kind: k}, nil
}

var basic = func() map[string]bool {
	m := map[string]bool{}
	for k := model.Bool; k <= model.Time; k++ {
		m[k.String()] = true
	}
	return m
}()

func (p *lineParser) number() (int64, error) {
	start := p.off
	for p.off < len(p.s) && p.s[p.off] >= '0' && p.s[p.off] <= '9' {
		p.off++
	}
	n, err := strconv.ParseInt(p.s[start:p.off], 10, 64)
	if err != nil {
		p.off = start
		return 0, p.errorf("want a number")
	}
	return n, nil
}

func (p *lineParser) key() (string, error) {
	if p.off < len(p.s) && p.s[p.off] == '"' {
		q, err := strconv.QuotedPrefix(p.s[p.off:])
		if err != nil {
			return "", p.errorf("bad quoted field key")
		}
		p.off += len(q)
		k, _ := strconv.Unquote(q)
		return k, nil
	}
	start := p.off
	for p.off < len(p.s) {
		c := p.s[p.off]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (p.off > start && c >= '0' && c <= '9') {
			p.off++
			continue
		}
		break
	}
	if p.off == start {
		return "", p.errorf("want a field key")
	}
	return p.s[start:p.off], nil
}
