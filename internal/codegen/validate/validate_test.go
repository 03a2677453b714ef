package validate

import (
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// fakeScope declares the listed package-level names and Type.member names.
type fakeScope map[string]bool

func (s fakeScope) Lookup(name string) (model.Pos, bool) {
	return model.Pos{File: "user.go", Line: 1, Col: 1}, s[name]
}

func (s fakeScope) Member(typeName, name string) (model.Pos, bool) {
	return model.Pos{File: "user.go", Line: 2, Col: 1}, s[typeName+"."+name]
}

func pos(line int) model.Pos { return model.Pos{File: "a.go", Line: line, Col: 6} }

func account() *model.Package {
	a := &model.Aggregate{GoName: "Account", WireName: "Account", Pos: pos(1),
		Events:   []*model.Event{{GoName: "Deposited", WireName: "Deposited", Version: 1, Pos: pos(2)}},
		Commands: []*model.Command{{GoName: "Deposit", Pos: pos(3)}}}
	return &model.Package{Aggregates: []*model.Aggregate{a}}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*model.Package)
		scope  fakeScope
		codec  []string
		want   []string // substrings, one per expected error
	}{
		{name: "clean"},
		{name: "no events", mutate: func(p *model.Package) { p.Aggregates[0].Events = nil }, want: []string{"aggregate Account has no events"}},
		{name: "duplicate wire name", mutate: func(p *model.Package) {
			p.Aggregates[0].Events = append(p.Aggregates[0].Events, &model.Event{GoName: "Other", WireName: "Deposited", Pos: pos(4)})
		}, want: []string{`event Other has wire name "Deposited", already used by event Deposited`}},
		{name: "duplicate stream type", mutate: func(p *model.Package) {
			p.Aggregates = append(p.Aggregates, &model.Aggregate{GoName: "Ledger", WireName: "Account", Pos: pos(9),
				Events: []*model.Event{{GoName: "Posted", WireName: "Posted", Pos: pos(10)}}})
		}, want: []string{`aggregate Ledger has stream type name "Account"`}},
		{name: "user names", scope: fakeScope{"AccountEvent": true, "DepositedSchemaVersion": true, "Account.Decide": true, "Deposited.isAccountEvent": true},
			want: []string{"AccountEvent collides", "DepositedSchemaVersion collides", "Account.Decide collides", "Deposited.isAccountEvent collides"}},
		{name: "no command names without commands", mutate: func(p *model.Package) { p.Aggregates[0].Commands = nil },
			scope: fakeScope{"AccountCommand": true, "Account.Decide": true}},
		{name: "codec names", scope: fakeScope{"cqrsMarshalAccount": true}, codec: []string{"cqrsMarshalAccount"},
			want: []string{"cqrsMarshalAccount collides with a codec function"}},
		{name: "generated twice", mutate: func(p *model.Package) {
			p.Aggregates = append(p.Aggregates, &model.Aggregate{GoName: "NewAccount", WireName: "NewAccount", Pos: pos(9),
				Events: []*model.Event{{GoName: "Made", WireName: "Made", Pos: pos(10)}}})
		}, want: []string{"cqrsgen would declare NewAccountRepository twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := account()
			if tt.mutate != nil {
				tt.mutate(p)
			}
			if tt.scope == nil {
				tt.scope = fakeScope{}
			}
			errs := Sort(Check(p, tt.scope, tt.codec))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for _, w := range tt.want {
				found := false
				for _, e := range errs {
					found = found || strings.Contains(e.Msg, w)
				}
				if !found {
					t.Errorf("no error containing %q in %v", w, errs)
				}
			}
		})
	}
}

func TestImports(t *testing.T) {
	src := []byte("package p\n\nimport (\n\t\"context\"\n\tw \"example.com/wire\"\n\t\"example.com/runtime\"\n)\n")
	errs := Imports(src, fakeScope{"w": true, "runtime": true, "wire": true})
	if len(errs) != 2 || !strings.Contains(errs[0].Msg+errs[1].Msg, `"example.com/wire"`) || !strings.Contains(errs[0].Msg+errs[1].Msg, `"example.com/runtime"`) {
		t.Fatalf("got %v", errs)
	}
}

func TestSort(t *testing.T) {
	e := func(file string, line, col int, msg string) model.Error {
		return model.Error{Pos: model.Pos{File: file, Line: line, Col: col}, Msg: msg}
	}
	got := Sort([]model.Error{e("b.go", 1, 1, "x"), e("a.go", 10, 1, "x"), e("a.go", 9, 5, "y"), e("a.go", 9, 5, "x"), e("a.go", 10, 1, "x"), e("a.go", 9, 12, "x")})
	want := []model.Error{e("a.go", 9, 5, "x"), e("a.go", 9, 5, "y"), e("a.go", 9, 12, "x"), e("a.go", 10, 1, "x"), e("b.go", 1, 1, "x")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
