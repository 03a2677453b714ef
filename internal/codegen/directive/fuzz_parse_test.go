package directive

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
)

// fuzzPlacements put a fuzzed comment line where directives can appear:
// above an ungrouped type, above a type in a group, above a func, floating
// at file level, trailing a declaration, and inside a function body.
var fuzzPlacements = []string{
	"package p\n\n%s\ntype T struct{ X int }\n",
	"package p\n\ntype (\n\t%s\n\tT struct{}\n\tU int\n)\n",
	"package p\n\n%s\nfunc F(t T) U { return U(0) }\n",
	"package p\n\n%s\n\nvar x = 1\n",
	"package p\n\ntype T struct{} %s\n",
	"package p\n\nfunc f() {\n\t%s\n\t_ = 0\n}\n",
}

// FuzzParse feeds arbitrary directive lines to the parser in every
// placement. It must never panic, must be deterministic, must point every
// directive and error at a real line of the file, and must never drop a
// //cqrs: line silently: each yields a directive or an error.
func FuzzParse(f *testing.F) {
	for _, line := range []string{
		"//cqrs:aggregate name=bank.account snapshot=100",
		"//cqrs:event Account name=opened version=2",
		"//cqrs:command Account",
		"//cqrs:projection name=balances",
		"//cqrs:upcast",
		"//cqrs:saga name=s",
		"//cqrs:aggregate name=\"a b\" snapshot=18446744073709551616",
		"//cqrs:event A version=0 name= name=x",
		"//cqrs:unknown x=y",
		"//cqrs:",
		"//cqrs:event\tA\tname=\"\\xff\"",
		"// cqrs:aggregate",
	} {
		for p := range fuzzPlacements {
			f.Add(line, uint8(p))
		}
	}
	f.Fuzz(func(t *testing.T, line string, placement uint8) {
		if strings.ContainsAny(line, "\n\r") || !strings.HasPrefix(line, "//") || strings.Contains(line, "*/") {
			return // keep it one line comment, so the placement holds
		}
		src := strings.Replace(fuzzPlacements[int(placement)%len(fuzzPlacements)], "%s", line, 1)
		parse := func() ([]Directive, []string) {
			fset := token.NewFileSet()
			file, err := goparser.ParseFile(fset, "f.go", src, goparser.ParseComments)
			if err != nil {
				return nil, nil
			}
			dirs, errs := Parse(fset, []*ast.File{file})
			lines := strings.Count(src, "\n") + 1
			for _, d := range dirs {
				if d.Pos.File != "f.go" || d.Pos.Line < 1 || d.Pos.Line > lines || d.Pos.Col < 1 {
					t.Fatalf("directive %+v at a position outside the file\n%s", d, src)
				}
				if d.Type == "" || len(d.Name) > MaxNameLength {
					t.Fatalf("directive %+v accepted with an empty type or an over-long name\n%s", d, src)
				}
			}
			var msgs []string
			for _, e := range errs {
				if e.Pos.File != "f.go" || e.Pos.Line < 1 || e.Pos.Line > lines || e.Msg == "" {
					t.Fatalf("error %q at a position outside the file\n%s", e.Error(), src)
				}
				msgs = append(msgs, e.Error())
			}
			return dirs, msgs
		}
		fset := token.NewFileSet()
		if _, err := goparser.ParseFile(fset, "f.go", src, goparser.ParseComments); err != nil {
			return // not Go: the loader reports it before the parser runs
		}
		dirs, msgs := parse()
		dirs2, msgs2 := parse()
		if !reflect.DeepEqual(dirs, dirs2) || !reflect.DeepEqual(msgs, msgs2) {
			t.Fatalf("two parses differ:\n%v %q\n%v %q", dirs, msgs, dirs2, msgs2)
		}
		if strings.HasPrefix(line, Prefix) && len(dirs) == 0 && len(msgs) == 0 {
			t.Fatalf("directive line %q ignored silently\n%s", line, src)
		}
	})
}
