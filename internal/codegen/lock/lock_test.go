package lock

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

func testPackage() *model.Package {
	str := &model.Type{Kind: model.String}
	addr := &model.Struct{GoName: "Address", Fields: []*model.Field{{Key: "Street", Type: str}, {Key: "zip code", Type: &model.Type{Kind: model.Uint16}}}}
	node := &model.Struct{GoName: "Node"}
	node.Fields = []*model.Field{{Key: "Next", Type: &model.Type{Kind: model.Pointer, Elem: &model.Type{Kind: model.StructKind, Struct: node}}}}
	opened := &model.Struct{GoName: "Opened", Fields: []*model.Field{
		{Key: "Owner", Type: str},
		{Key: "Address", Type: &model.Type{Kind: model.StructKind, Struct: addr}},
		{Key: "Tags", Type: &model.Type{Kind: model.Map, Key: str, Elem: &model.Type{Kind: model.Slice, Elem: &model.Type{Kind: model.Bytes}}}},
		{Key: "Hash", Type: &model.Type{Kind: model.Array, Len: 4, Elem: &model.Type{Kind: model.Uint8}}},
		{Key: "Tree", Type: &model.Type{Kind: model.StructKind, Struct: node}},
		{Key: "At", Type: &model.Type{Kind: model.Time}},
	}}
	dep := &model.Struct{GoName: "Deposited", Fields: []*model.Field{{Key: "Amount", Type: &model.Type{Kind: model.Int64}}}}
	depV1 := &model.Struct{GoName: "DepositedV1", Fields: []*model.Field{{Key: "Amount", Type: &model.Type{Kind: model.Float64}}}}
	return &model.Package{Aggregates: []*model.Aggregate{
		{GoName: "Account", WireName: "bank account", State: &model.Struct{GoName: "Account"}, Events: []*model.Event{
			{GoName: "Opened", WireName: "opened", Version: 1, Struct: opened},
			{GoName: "Deposited", WireName: "dep@sited", Version: 2, Struct: dep, Upcasts: []*model.Upcast{{WireName: "dep@sited", Version: 1, Struct: depV1}}},
		}},
		{GoName: "Ledger", WireName: "ledger", State: &model.Struct{GoName: "Ledger", Fields: []*model.Field{{Key: "N", Type: &model.Type{Kind: model.Int}}}}},
	}}
}

// TestRoundTrip: what Render writes, Parse reads back identically, and
// Render is independent of the order aggregates and events come in.
func TestRoundTrip(t *testing.T) {
	pkg := testPackage()
	want := Render(Entries(pkg))
	if !strings.Contains(string(want), `upcast "bank account" dep@sited@1 DepositedV1 {Amount:float64}`) ||
		!strings.Contains(string(want), `Address:{Street:string "zip code":uint16} Tags:map[string][]bytes Hash:[4]uint8 Tree:{Next:*^1} At:time}`) {
		t.Fatalf("unexpected rendering:\n%s", want)
	}
	entries, errs := Parse("cqrs.lock", want)
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	if got := Render(entries); string(got) != string(want) {
		t.Fatalf("round trip differs:\n%s\nwant\n%s", got, want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		rng.Shuffle(len(pkg.Aggregates), func(i, j int) { pkg.Aggregates[i], pkg.Aggregates[j] = pkg.Aggregates[j], pkg.Aggregates[i] })
		for _, a := range pkg.Aggregates {
			rng.Shuffle(len(a.Events), func(i, j int) { a.Events[i], a.Events[j] = a.Events[j], a.Events[i] })
		}
		if got := Render(Entries(pkg)); string(got) != string(want) {
			t.Fatalf("order-dependent rendering:\n%s", got)
		}
	}
}

func shape(t *testing.T, s string) *Shape {
	t.Helper()
	p := &lineParser{s: s}
	sh, err := p.shape(0)
	if err != nil || p.off != len(s) {
		t.Fatalf("shape %q: %v", s, err)
	}
	return sh
}

// TestDiff lists, for pairs of locked and current shapes, which changes
// are breaking.
func TestDiff(t *testing.T) {
	tests := []struct {
		old, cur string
		breaking []string // describe() of each breaking change
	}{
		{"{A:int64}", "{A:int64 B:string}", nil},
		{"{A:int64 B:string}", "{B:string A:int64}", nil},
		{"{A:int32}", "{A:int64}", nil},
		{"{A:uint16}", "{A:int32}", nil},
		{"{A:float32 S:string}", "{A:float64 S:bytes}", nil},
		{"{A:int64}", "{A:int32}", []string{"field A of E changed from int64 to int32"}},
		{"{A:uint64}", "{A:int64}", []string{"field A of E changed from uint64 to int64"}},
		{"{A:int64}", "{A:string}", []string{"field A of E changed from int64 to string"}},
		{"{A:int64 B:bool}", "{B:bool}", []string{"field A of E was removed"}},
		{"{A:int64}", "{B:int64}", []string{"field A of E was renamed to B (keep the old wire key with a `msgpack:\"A\"` tag)"}},
		{"{X:{Y:int}}", "{X:{Y:string Z:bool}}", []string{"field X.Y of E changed from int to string"}},
		{"{L:[]{Y:int}}", "{L:[]{}}", []string{"field L.Y of E was removed"}},
		{"{L:[]int32}", "{L:[]int64}", nil},
		{"{L:[3]int}", "{L:[4]int}", []string{"field L of E changed from [3]int to [4]int"}},
		{"{M:map[string]int}", "{M:map[int64]int}", []string{"field M of E changed from map[string]int to map[int64]int"}},
		{"{P:*int64}", "{P:int64}", []string{"field P of E changed from *int64 to int64"}},
		{"{T:time}", "{T:int64}", []string{"field T of E changed from time to int64"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range diffStruct(nil, shape(t, tt.old), shape(t, tt.cur)) {
			if !c.compatible {
				got = append(got, c.describe("E", false))
			}
		}
		if strings.Join(got, "\n") != strings.Join(tt.breaking, "\n") {
			t.Errorf("%s → %s: breaking %q, want %q", tt.old, tt.cur, got, tt.breaking)
		}
	}
}

// TestParseErrors: bad lines are positioned errors, never panics.
func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"event s n@1 E {A:int", "event s n@1 E {A:}", "event s n@1 E {A:int}x", "event s n@0 E {}",
		"state s", "event s @1 E {}", "event \"s n@1 E {}", "event s n@1 E {A:[x]int}", "event s n@1 E {A:map[string int}",
		"event s n@1 E {A:" + strings.Repeat("*", 200) + "int}", "bogus", "event s \"n\"1 E {}",
	} {
		_, errs := Parse("cqrs.lock", []byte(Header+"\n"+line+"\n"))
		if len(errs) != 1 || errs[0].Pos.Line != 2 || errs[0].Pos.Col < 1 {
			t.Errorf("%q: errors %v, want one at line 2", line, errs)
		}
	}
	if _, errs := Parse("cqrs.lock", []byte("state s S {}\n")); len(errs) != 1 || errs[0].Pos.Line != 1 {
		t.Errorf("missing header: %v", errs)
	}
}
