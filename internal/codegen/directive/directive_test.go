package directive

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func parse(t *testing.T, src string) ([]Directive, []string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := goparser.ParseFile(fset, "x.go", src, goparser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	dirs, errs := Parse(fset, []*ast.File{f})
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return dirs, msgs
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Directive // compared on Kind, Type, Target, Name, Snapshot, Version
	}{
		{"aggregate defaults", "package p\n//cqrs:aggregate\ntype A struct{}\n", Directive{Kind: Aggregate, Type: "A"}},
		{"aggregate options", "package p\n// A doc.\n//\n//cqrs:aggregate name=bank.account  snapshot=25\ntype A struct{}\n",
			Directive{Kind: Aggregate, Type: "A", Name: "bank.account", Snapshot: 25}},
		{"snapshot zero", "package p\n//cqrs:aggregate snapshot=0\ntype A struct{}\n", Directive{Kind: Aggregate, Type: "A"}},
		{"event", "package p\n//cqrs:event A name=a.x version=7\ntype X struct{}\n", Directive{Kind: Event, Type: "X", Target: "A", Name: "a.x", Version: 7}},
		{"grouped event", "package p\ntype (\n\t//cqrs:event A\n\tX struct{}\n)\n", Directive{Kind: Event, Type: "X", Target: "A"}},
		{"command with tab", "package p\n//cqrs:command\tA\ntype C struct{}\n", Directive{Kind: Command, Type: "C", Target: "A"}},
		{"projection default", "package p\n//cqrs:projection\ntype P struct{}\n", Directive{Kind: Projection, Type: "P"}},
		{"projection name", "package p\n//cqrs:projection name=bank:balances\ntype P struct{}\n", Directive{Kind: Projection, Type: "P", Name: "bank:balances"}},
		{"utf-8 name", "package p\n//cqrs:event A name=dépôt\ntype X struct{}\n", Directive{Kind: Event, Type: "X", Target: "A", Name: "dépôt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirs, errs := parse(t, tt.src)
			if len(errs) > 0 || len(dirs) != 1 {
				t.Fatalf("got %v, errors %v", dirs, errs)
			}
			d := dirs[0]
			d.Pos, d.TypePos = tt.want.Pos, tt.want.TypePos
			if !reflect.DeepEqual(d, tt.want) {
				t.Errorf("got %+v, want %+v", d, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown directive", "package p\n//cqrs:agregate\ntype A struct{}\n", "x.go:2:1: unknown directive //cqrs:agregate"},
		{"unknown option", "package p\n//cqrs:aggregate snap=1\ntype A struct{}\n", `x.go:2:18: //cqrs:aggregate: unknown option "snap"`},
		{"negative snapshot", "package p\n//cqrs:aggregate snapshot=-2\ntype A struct{}\n", "x.go:2:27: //cqrs:aggregate: snapshot=-2: want a whole number"},
		{"plus snapshot", "package p\n//cqrs:aggregate snapshot=+2\ntype A struct{}\n", "snapshot=+2: want a whole number"},
		{"version zero", "package p\n//cqrs:event A version=0\ntype X struct{}\n", "version=0: want a schema version from 1"},
		{"version overflow", "package p\n//cqrs:event A version=4294967296\ntype X struct{}\n", "version=4294967296: want a schema version"},
		{"empty name", "package p\n//cqrs:event A name=\ntype X struct{}\n", "name= needs a value"},
		{"long name", "package p\n//cqrs:event A name=" + strings.Repeat("n", 256) + "\ntype X struct{}\n", "name= is 256 bytes, limit 255"},
		{"no target", "package p\n//cqrs:command\ntype C struct{}\n", "//cqrs:command needs the aggregate type"},
		{"bad target", "package p\n//cqrs:event a.B\ntype X struct{}\n", `"a.B" is not a type name`},
		{"on var", "package p\n//cqrs:aggregate\nvar A int\n", "misplaced directive //cqrs:aggregate"},
		{"floating", "package p\n\n//cqrs:aggregate\n\ntype A struct{}\n", "x.go:3:1: misplaced directive //cqrs:aggregate"},
		{"in a body", "package p\nfunc f() {\n\t//cqrs:aggregate\n\ttype A struct{}\n\t_ = A{}\n}\n", "x.go:3:2: misplaced directive"},
		{"field", "package p\ntype A struct {\n\t//cqrs:event A\n\tX int\n}\n", "misplaced directive //cqrs:event"},
		{"on func", "package p\n//cqrs:aggregate\nfunc f() {}\n", "not a func"},
		{"upcast on a type", "package p\n//cqrs:upcast\ntype T struct{}\n", "x.go:2:1: misplaced directive //cqrs:upcast: it must be directly above a func declaration func F(old Old) New, not a type"},
		{"upcast on a method", "package p\n//cqrs:upcast\nfunc (T) f() {}\n", "misplaced directive //cqrs:upcast: it must be directly above a func declaration func F(old Old) New, not a method"},
		{"upcast on a var", "package p\n//cqrs:upcast\nvar v int\n", "misplaced directive //cqrs:upcast: it must be directly above a func declaration"},
		{"upcast from without version", "package p\n//cqrs:upcast from=x\nfunc f() {}\n", "x.go:2:20: //cqrs:upcast: from=x: want from=<wire name>@<version>"},
		{"upcast from version zero", "package p\n//cqrs:upcast from=x@0\nfunc f() {}\n", "x.go:2:22: //cqrs:upcast: from=x@0: version \"0\""},
		{"upcast option", "package p\n//cqrs:upcast version=2\nfunc f() {}\n", `x.go:2:15: //cqrs:upcast: unknown option "version" (options: from=)`},
		{"projection option", "package p\n//cqrs:projection version=2\ntype P struct{}\n", `x.go:2:19: //cqrs:projection: unknown option "version" (options: name=)`},
		{"projection target", "package p\n//cqrs:projection Account\ntype P struct{}\n", `x.go:2:19: //cqrs:projection: unexpected argument "Account"`},
		{"projection empty name", "package p\n//cqrs:projection name=\ntype P struct{}\n", "x.go:2:24: //cqrs:projection: name= needs a value"},
		{"group doc", "package p\n//cqrs:aggregate\ntype (\n\tA struct{}\n)\n", "is above a grouped type declaration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parse(t, tt.src)
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) {
				t.Errorf("errors %q, want one containing %q", errs, tt.want)
			}
		})
	}
}

// TestSpacedDirective: "// cqrs:aggregate" (a space after //) is reported
// once, and read as the directive it was meant to be so that nothing
// cascades from it; prose that merely mentions cqrs: is left alone.
func TestSpacedDirective(t *testing.T) {
	dirs, errs := parse(t, "package p\n//  cqrs:aggregate snapshot=5\ntype A struct{}\n")
	want := []string{`x.go:2:1: "// cqrs:aggregate" is an ordinary comment, not a directive: write //cqrs:aggregate, with no space after //`}
	if !slices.Equal(errs, want) {
		t.Errorf("errors %q, want %q", errs, want)
	}
	if len(dirs) != 1 || dirs[0].Kind != Aggregate || dirs[0].Type != "A" || dirs[0].Snapshot != 5 {
		t.Errorf("directives %+v, want the aggregate A with snapshot=5", dirs)
	}
	for _, src := range []string{
		"package p\n// cqrs:aggregate marks aggregates; see the docs.\n\nvar x int\n", // not a doc comment
		"package p\n// cqrs:whatever is prose.\ntype A struct{}\n",                    // not a directive name
		"package p\n// Use cqrs:aggregate on the state.\ntype A struct{}\n",           // not at the start
		"package p\n// cqrs:event handlers live below.\nfunc f() {}\n",                // a func takes only upcast
	} {
		if dirs, errs := parse(t, src); len(dirs) != 0 || len(errs) != 0 {
			t.Errorf("%q: got %v %v, want nothing", src, dirs, errs)
		}
	}
}

// TestSpacedUpcast: "// cqrs:upcast" above a func is reported and read.
func TestSpacedUpcast(t *testing.T) {
	dirs, errs := parse(t, "package p\n// cqrs:upcast\nfunc f(old OldT) T { return T{} }\n")
	if len(errs) != 1 || !strings.Contains(errs[0], `"// cqrs:upcast" is an ordinary comment`) {
		t.Errorf("errors %q", errs)
	}
	if len(dirs) != 1 || dirs[0].Kind != Upcast || dirs[0].Type != "f" {
		t.Errorf("directives %+v, want the upcast f", dirs)
	}
}

// TestNearMisses: a misspelt directive or option gets a suggestion, and a
// misspelt directive is still read as the one suggested.
func TestNearMisses(t *testing.T) {
	tests := []struct {
		src, want string
		kind      Kind // of the one directive read, "" for none
	}{
		{"//cqrs:agregate\ntype A struct{}", "x.go:2:1: unknown directive //cqrs:agregate; did you mean //cqrs:aggregate?", Aggregate},
		{"//cqrs:Aggregate\ntype A struct{}", "did you mean //cqrs:aggregate?", Aggregate},
		{"//cqrs:events A\ntype E struct{}", "did you mean //cqrs:event?", Event},
		{"//cqrs:upcas\nfunc f() {}", "did you mean //cqrs:upcast?", ""},
		{"//cqrs:frobnicate\ntype A struct{}", "(known: //cqrs:aggregate", ""},
		{"//cqrs:aggregate snapshots=50\ntype A struct{}", `x.go:2:18: //cqrs:aggregate: unknown option "snapshots"; did you mean snapshot=? (options: name=, snapshot=)`, Aggregate},
		{"//cqrs:event A versoin=2\ntype E struct{}", `unknown option "versoin"; did you mean version=?`, Event},
		{"//cqrs:aggregate colour=red\ntype A struct{}", `unknown option "colour" (options: name=, snapshot=)`, Aggregate},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			dirs, errs := parse(t, "package p\n"+tt.src+"\n")
			if len(errs) != 1 || !strings.Contains(errs[0], tt.want) {
				t.Errorf("errors %q, want one containing %q", errs, tt.want)
			}
			switch {
			case tt.kind == "" && len(dirs) != 0:
				t.Errorf("read %+v, want nothing", dirs)
			case tt.kind != "" && (len(dirs) != 1 || dirs[0].Kind != tt.kind):
				t.Errorf("read %+v, want one %s", dirs, tt.kind)
			}
		})
	}
}

// TestAllErrorsCollected: several problems in one file are all reported.
func TestAllErrorsCollected(t *testing.T) {
	_, errs := parse(t, "package p\n//cqrs:aggregate x=1 snapshot=y\ntype A struct{}\n//cqrs:nope\ntype B struct{}\n")
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got %q", errs)
	}
}
