package directive

import (
	"go/ast"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// upcastPlace says where //cqrs:upcast belongs, for misplaced-directive
// errors.
const upcastPlace = "it must be directly above a func declaration func F(old Old) New"

// upcast parses a //cqrs:upcast directive above a func declaration:
//
//	//cqrs:upcast [from=<wire name>@<version>]
//	func F(old Old) New
//
// Without from= the upcaster reads the wire name of New at New's version
// minus one (resolved by package build, which knows the versions).
func (p *parser) upcast(fd *ast.FuncDecl, c *ast.Comment) {
	d := Directive{Kind: Upcast, Pos: p.pos(c.Slash), Type: fd.Name.Name, TypePos: p.pos(fd.Name.Pos())}
	if fd.Recv != nil {
		p.errorf(d.Pos, "misplaced directive %s%s: %s, not a method", Prefix, Upcast, upcastPlace)
		return
	}
	text := c.Text
	at := func(off int) model.Pos {
		pos := d.Pos
		pos.Col += utf8.RuneCountInString(text[:off])
		return pos
	}
	ok := true
	seen := false
	for _, w := range fields(text)[1:] {
		key, value, hasEq := strings.Cut(w.text, "=")
		pos := at(w.off)
		switch {
		case !hasEq:
			p.errorf(pos, "%s%s: unexpected argument %q (options are key=value)", Prefix, Upcast, w.text)
			ok = false
			continue
		case key != "from":
			p.errorf(pos, "%s%s: unknown option %q (options: from=)", Prefix, Upcast, key)
			ok = false
			continue
		case seen:
			p.errorf(pos, "%s%s: option from= given twice", Prefix, Upcast)
			ok = false
			continue
		}
		seen = true
		vpos := at(w.off + len(key) + 1)
		i := strings.LastIndexByte(value, '@')
		if i <= 0 {
			p.errorf(vpos, "%s%s: from=%s: want from=<wire name>@<version>, e.g. from=bank.account.deposited@1", Prefix, Upcast, value)
			ok = false
			continue
		}
		name, ver := value[:i], value[i+1:]
		n, err := strconv.ParseUint(ver, 10, 32)
		switch {
		case err != nil || n < 1 || strings.HasPrefix(ver, "+"):
			p.errorf(at(w.off+len(key)+1+i+1), "%s%s: from=%s: version %q: want a schema version from 1 to %d", Prefix, Upcast, value, ver, uint32(1<<32-1))
			ok = false
		case len(name) > MaxNameLength:
			p.errorf(vpos, "%s%s: from= wire name is %d bytes, limit %d", Prefix, Upcast, len(name), MaxNameLength)
			ok = false
		case !utf8.ValidString(name):
			p.errorf(vpos, "%s%s: from= wire name is not valid UTF-8", Prefix, Upcast)
			ok = false
		default:
			d.From, d.FromVersion = name, uint32(n)
		}
	}
	if ok {
		p.dirs = append(p.dirs, d)
	}
}
