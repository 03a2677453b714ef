// Package directive finds and parses cqrsgen's //cqrs:… directives in the
// syntax of a package. It knows the directive grammar only: which
// directives exist, which options each takes and what their values look
// like. Resolving the annotated types is the job of package build.
//
// A directive is a comment line starting exactly with "//cqrs:" (no space,
// like //go:generate), directly above a type declaration:
//
//	//cqrs:aggregate name=account snapshot=100
//	type Account struct{ … }
//
// Go's CommentGroup.Text drops directive lines, so the parser scans
// CommentGroup.List. An ungrouped "type X struct{}" carries its comments on
// the GenDecl, a type inside "type ( … )" on its TypeSpec.
package directive

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
	"github.com/cqrsgen/cqrsgen/internal/suggest"
)

// Prefix starts every directive.
const Prefix = "//cqrs:"

// Kind is a directive's name.
type Kind string

// The directives this version understands.
const (
	Aggregate Kind = "aggregate"
	Event     Kind = "event"
	Command   Kind = "command"
	// Projection marks a read model (see internal/codegen/resolve/projection.go).
	Projection Kind = "projection"
	// Upcast marks a func lifting an old event shape one schema version
	// (see upcast.go).
	Upcast Kind = "upcast"
	// Saga marks a process manager (see internal/codegen/resolve/saga.go).
	Saga Kind = "saga"
	// Retired, beside //cqrs:aggregate on the aggregate's type, lists
	// stored events (wire-name@version) that no type reads any more: the
	// repository skips them.
	Retired Kind = "retired"
)

// MaxNameLength bounds name= values (the runtime's MaxTypeLength and
// MaxNameLength).
const MaxNameLength = 255

// Directive is one parsed directive and the type it annotates.
type Directive struct {
	Kind Kind
	// Type is the annotated type's identifier and TypePos its position.
	Type    string
	TypePos model.Pos
	// Target is the positional argument (the aggregate of an event or
	// command), empty for aggregates.
	Target string
	// Name is the name= option, empty when absent.
	Name string
	// Snapshot is the snapshot= option (aggregates), 0 when absent.
	Snapshot uint64
	// Version is the version= option (events, sagas), 0 when absent.
	Version uint32
	// From and FromVersion are the from=<wire name>@<version> option of
	// an upcast (the stored event it reads), empty and 0 when absent. For
	// an upcast, Type and TypePos are the func's name and position.
	From        string
	FromVersion uint32
	// Retired are the wire-name@version arguments of //cqrs:retired, each
	// with its position.
	Retired []model.Retired
	// Pos is the position of the directive comment.
	Pos model.Pos
}

// Parse returns the directives of files, ordered by position, and every
// problem found: unknown or misplaced directives, unknown, repeated or
// malformed options, missing or extra arguments.
func Parse(fset *token.FileSet, files []*ast.File) ([]Directive, []model.Error) {
	p := &parser{fset: fset, used: map[*ast.Comment]bool{}}
	for _, f := range files {
		p.file(f)
	}
	sort.SliceStable(p.dirs, func(i, j int) bool { return less(p.dirs[i].Pos, p.dirs[j].Pos) })
	return p.dirs, p.errs
}

func less(a, b model.Pos) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

type parser struct {
	fset *token.FileSet
	used map[*ast.Comment]bool
	dirs []Directive
	errs []model.Error
}

func (p *parser) pos(pos token.Pos) model.Pos {
	position := p.fset.Position(pos)
	return model.Pos{File: position.Filename, Line: position.Line, Col: position.Column}
}

func (p *parser) errorf(pos model.Pos, format string, args ...any) {
	p.errs = append(p.errs, model.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) file(f *ast.File) {
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.GenDecl:
			if decl.Tok != token.TYPE {
				continue
			}
			if decl.Lparen.IsValid() {
				// Grouped: each spec has its own doc; the group's doc
				// belongs to no single type.
				p.misplaced(decl.Doc, "is above a grouped type declaration; put it directly above the type inside the group")
				for _, spec := range decl.Specs {
					ts := spec.(*ast.TypeSpec)
					p.typeSpec(ts, ts.Doc)
				}
				continue
			}
			for _, spec := range decl.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil {
					doc = decl.Doc
				}
				p.typeSpec(ts, doc)
			}
		case *ast.FuncDecl:
			p.funcDecl(decl)
		}
	}
	// Every directive not consumed above is misplaced: on a const, var,
	// import, inside a body, or detached from any declaration.
	for _, cg := range f.Comments {
		p.misplaced(cg, "must be directly above a type declaration")
	}
}

// lines returns the directive lines of a comment group.
func directives(cg *ast.CommentGroup) []*ast.Comment {
	if cg == nil {
		return nil
	}
	var out []*ast.Comment
	for _, c := range cg.List {
		if strings.HasPrefix(c.Text, Prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (p *parser) misplaced(cg *ast.CommentGroup, where string) {
	for _, c := range directives(cg) {
		if p.used[c] {
			continue
		}
		p.used[c] = true
		name, _, _ := strings.Cut(strings.TrimPrefix(c.Text, Prefix), " ")
		if !p.known(name) {
			p.unknown(c, name)
			continue
		}
		if Kind(name) == Upcast {
			p.errorf(p.pos(c.Slash), "misplaced directive %s%s: %s", Prefix, name, upcastPlace)
			continue
		}
		p.errorf(p.pos(c.Slash), "misplaced directive %s%s: it %s", Prefix, name, where)
	}
}

func (p *parser) known(name string) bool {
	switch Kind(name) {
	case Aggregate, Event, Command, Projection, Upcast, Saga, Retired:
		return true
	}
	return false
}

func (p *parser) unknown(c *ast.Comment, name string) {
	if guess := suggest.Closest(name, allKinds); guess != "" {
		p.errorf(p.pos(c.Slash), "unknown directive %s%s; did you mean %s%s?", Prefix, name, Prefix, guess)
		return
	}
	p.errorf(p.pos(c.Slash), "unknown directive %s%s (known: %saggregate, %sevent, %scommand, %sprojection, %supcast, %ssaga, %sretired)",
		Prefix, name, Prefix, Prefix, Prefix, Prefix, Prefix, Prefix, Prefix)
}

// Directive names: every one, and those that annotate types.
var (
	allKinds  = []string{string(Aggregate), string(Event), string(Command), string(Projection), string(Upcast), string(Saga), string(Retired)}
	typeKinds = []string{string(Aggregate), string(Event), string(Command), string(Projection), string(Saga), string(Retired)}
)

func (p *parser) funcDecl(fd *ast.FuncDecl) {
	for _, c := range p.spacedDirectives(fd.Doc, func(k Kind) bool { return k == Upcast }) {
		p.upcast(fd, c)
	}
	for _, c := range directives(fd.Doc) {
		p.used[c] = true
		name, _, _ := strings.Cut(strings.TrimPrefix(c.Text, Prefix), " ")
		switch {
		case Kind(name) == Upcast:
			p.upcast(fd, c)
		case p.known(name):
			p.errorf(p.pos(c.Slash), "misplaced directive %s%s: it must be directly above a type declaration, not a func", Prefix, name)
		default:
			p.unknown(c, name)
		}
	}
}

func (p *parser) typeSpec(ts *ast.TypeSpec, doc *ast.CommentGroup) {
	spaced := p.spacedDirectives(doc, func(k Kind) bool { return k != Upcast })
	for _, c := range append(directives(doc), spaced...) {
		p.used[c] = true
		quiet := slices.Contains(spaced, c)
		nerrs := len(p.errs)
		// A directive with a problem is still recorded when its kind and
		// target are known: the problem is reported once, and the later
		// stages do not report its absence as further problems ("has no
		// //cqrs:aggregate directive", "undefined: BookEvent"). Nothing is
		// generated while any problem stands.
		d, usable := p.parse(c)
		if quiet {
			// The space was reported; the rest of a spaced line may well
			// be prose, so it is not picked apart as options.
			p.errs = p.errs[:nerrs]
		}
		if !usable {
			continue
		}
		d.Type = ts.Name.Name
		d.TypePos = p.pos(ts.Name.Pos())
		p.dirs = append(p.dirs, d)
	}
}

// spacedDirectives reports the doc comment lines that would be directives
// but for a space after // ("// cqrs:aggregate"), which Go and cqrsgen
// read as prose. Only the directive names that belong on the declaration
// (want) count, so prose mentioning "cqrs:" stays prose. It returns each such line without its spaces (its
// position moved to where "cqrs:" starts), to be read as the directive
// it was meant to be, so that the one mistake does not cascade.
func (p *parser) spacedDirectives(doc *ast.CommentGroup, want func(Kind) bool) []*ast.Comment {
	if doc == nil {
		return nil
	}
	var out []*ast.Comment
	for _, c := range doc.List {
		rest, ok := strings.CutPrefix(c.Text, "//")
		trimmed := strings.TrimLeft(rest, " \t")
		if !ok || rest == trimmed {
			continue
		}
		word, _, _ := strings.Cut(trimmed, " ")
		name, ok := strings.CutPrefix(word, "cqrs:")
		if !ok || !p.known(name) || !want(Kind(name)) {
			continue
		}
		p.errorf(p.pos(c.Slash), "%q is an ordinary comment, not a directive: write %s%s, with no space after //", "// cqrs:"+name, Prefix, name)
		shift := token.Pos(len(rest) - len(trimmed))
		out = append(out, &ast.Comment{Slash: c.Slash + shift, Text: "//" + trimmed})
	}
	return out
}

// field is one whitespace-separated word of a directive and its byte
// offset in the comment text.
type field struct {
	text string
	off  int
}

func fields(s string) []field {
	var out []field
	start := -1
	for i, r := range s {
		space := r == ' ' || r == '\t'
		switch {
		case space && start >= 0:
			out = append(out, field{s[start:i], start})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	if start >= 0 {
		out = append(out, field{s[start:], start})
	}
	return out
}

// parse parses one directive comment. It reports every problem, and
// returns usable when the directive's kind and target are known even so:
// the caller records it (without the options that were wrong) so that the
// one problem does not cascade.
func (p *parser) parse(c *ast.Comment) (d Directive, usable bool) {
	text := c.Text
	d.Pos = p.pos(c.Slash)
	at := func(off int) model.Pos {
		pos := d.Pos
		pos.Col += utf8.RuneCountInString(text[:off])
		return pos
	}
	words := fields(text)
	name := strings.TrimPrefix(words[0].text, Prefix)
	switch {
	case Kind(name) == Aggregate || Kind(name) == Event || Kind(name) == Command || Kind(name) == Projection || Kind(name) == Saga:
		d.Kind = Kind(name)
	case Kind(name) == Retired:
		d.Kind = Retired
		return p.retired(d, words[1:], at)
	case Kind(name) == Upcast:
		p.errorf(d.Pos, "misplaced directive %s%s: %s, not a type", Prefix, name, upcastPlace)
		return d, false
	default:
		p.unknown(c, name)
		// A near miss is read as the directive it is near, so that its
		// type is not reported as unannotated too.
		guess := Kind(suggest.Closest(name, typeKinds))
		if guess == "" {
			return d, false
		}
		d.Kind = guess
		if guess == Retired {
			return p.retired(d, words[1:], at)
		}
	}
	words = words[1:]
	if d.Kind != Aggregate && d.Kind != Projection && d.Kind != Saga {
		if len(words) == 0 || strings.Contains(words[0].text, "=") {
			p.errorf(d.Pos, "%s%s needs the aggregate type it belongs to: %s%s <Aggregate>", Prefix, d.Kind, Prefix, d.Kind)
			return d, false
		}
		d.Target = words[0].text
		if !token.IsIdentifier(d.Target) {
			p.errorf(at(words[0].off), "%s%s: %q is not a type name", Prefix, d.Kind, d.Target)
			return d, false
		}
		words = words[1:]
	}
	seen := map[string]bool{}
	for _, w := range words {
		key, value, hasEq := strings.Cut(w.text, "=")
		pos := at(w.off)
		if !hasEq {
			p.errorf(pos, "%s%s: unexpected argument %q (options are key=value)", Prefix, d.Kind, w.text)
			continue
		}
		if !allowed(d.Kind, key) {
			if guess := suggest.Closest(key, optionNames(d.Kind)); guess != "" {
				p.errorf(pos, "%s%s: unknown option %q; did you mean %s=?%s", Prefix, d.Kind, key, guess, optionsHint(d.Kind))
			} else {
				p.errorf(pos, "%s%s: unknown option %q%s", Prefix, d.Kind, key, optionsHint(d.Kind))
			}
			continue
		}
		if seen[key] {
			p.errorf(pos, "%s%s: option %s= given twice", Prefix, d.Kind, key)
			continue
		}
		seen[key] = true
		vpos := at(w.off + len(key) + 1)
		switch key {
		case "name":
			switch {
			case value == "":
				p.errorf(vpos, "%s%s: name= needs a value", Prefix, d.Kind)
			case len(value) > MaxNameLength:
				p.errorf(vpos, "%s%s: name= is %d bytes, limit %d", Prefix, d.Kind, len(value), MaxNameLength)
			case !utf8.ValidString(value):
				p.errorf(vpos, "%s%s: name= is not valid UTF-8", Prefix, d.Kind)
			default:
				d.Name = value
			}
		case "snapshot":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil || strings.HasPrefix(value, "+") {
				p.errorf(vpos, "%s%s: snapshot=%s: want a whole number of events ≥ 0", Prefix, d.Kind, value)
				continue
			}
			d.Snapshot = n
		case "version":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil || n < 1 {
				p.errorf(vpos, "%s%s: version=%s: want a schema version from 1 to %d", Prefix, d.Kind, value, uint32(1<<32-1))
				continue
			}
			d.Version = uint32(n)
		}
	}
	return d, true
}

func allowed(k Kind, key string) bool {
	switch k {
	case Aggregate:
		return key == "name" || key == "snapshot"
	case Event, Saga:
		return key == "name" || key == "version"
	case Projection:
		return key == "name"
	}
	return false
}

// optionNames lists the options of directive k.
func optionNames(k Kind) []string {
	switch k {
	case Aggregate:
		return []string{"name", "snapshot"}
	case Event:
		return []string{"name", "version"}
	case Projection, Saga:
		return []string{"name"}
	}
	return nil
}

func optionsHint(k Kind) string {
	switch k {
	case Aggregate:
		return " (options: name=, snapshot=)"
	case Event, Saga:
		return " (options: name=, version=)"
	case Projection:
		return " (options: name=)"
	}
	return " (it takes no options)"
}

// retired parses the arguments of //cqrs:retired: one or more stored
// event forms, wire-name@version. It is usable when at least one is
// well-formed.
func (p *parser) retired(d Directive, words []field, at func(int) model.Pos) (Directive, bool) {
	if len(words) == 0 {
		p.errorf(d.Pos, "%s%s needs the stored events it retires: %s%s <wire-name>@<version> …", Prefix, Retired, Prefix, Retired)
		return d, false
	}
	for _, w := range words {
		pos := at(w.off)
		i := strings.LastIndexByte(w.text, '@')
		if i <= 0 {
			p.errorf(pos, "%s%s: %q: want <wire-name>@<version>, the form cqrs.lock records", Prefix, Retired, w.text)
			continue
		}
		v, err := strconv.ParseUint(w.text[i+1:], 10, 32)
		if err != nil || v < 1 {
			p.errorf(pos, "%s%s: %q: want a schema version from 1 to %d after @", Prefix, Retired, w.text, uint32(1<<32-1))
			continue
		}
		name := w.text[:i]
		if len(name) > MaxNameLength || !utf8.ValidString(name) {
			p.errorf(pos, "%s%s: %q: a wire name is valid UTF-8 of at most %d bytes", Prefix, Retired, w.text, MaxNameLength)
			continue
		}
		d.Retired = append(d.Retired, model.Retired{WireName: name, Version: uint32(v), Pos: pos})
	}
	return d, len(d.Retired) > 0
}
