package templates

import (
	"testing"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

func TestStateSchema(t *testing.T) {
	str := &model.Type{Kind: model.String}
	i64 := &model.Type{Kind: model.Int64}
	mk := func(fields ...*model.Field) *model.Struct { return &model.Struct{GoName: "S", Fields: fields} }
	f := func(key string, typ *model.Type) *model.Field { return &model.Field{GoName: key, Key: key, Type: typ} }

	base := mk(f("Owner", str), f("Balance", i64))
	renamed := &model.Struct{GoName: "Renamed", Fields: []*model.Field{
		{GoName: "Who", Key: "Owner", Type: &model.Type{Kind: model.String, Name: "Name"}},
		{GoName: "Money", Key: "Balance", Type: i64},
	}}
	if StateSchema(base) != StateSchema(renamed) {
		t.Error("renaming Go types and fields (same keys and kinds) changed the schema")
	}
	if StateSchema(base) != StateSchema(mk(f("Owner", str), f("Balance", i64))) {
		t.Error("schema is not stable")
	}
	nested := &model.Struct{GoName: "Entry", Fields: []*model.Field{f("At", &model.Type{Kind: model.Time})}}
	nested2 := &model.Struct{GoName: "Entry", Fields: []*model.Field{f("At", &model.Type{Kind: model.Int64})}}
	different := map[string]*model.Struct{
		"kind":        mk(f("Owner", str), f("Balance", &model.Type{Kind: model.Int32})),
		"key":         mk(f("owner", str), f("Balance", i64)),
		"order":       mk(f("Balance", i64), f("Owner", str)),
		"added":       mk(f("Owner", str), f("Balance", i64), f("Open", &model.Type{Kind: model.Bool})),
		"slice":       mk(f("Owner", &model.Type{Kind: model.Slice, Elem: str}), f("Balance", i64)),
		"array len":   mk(f("Owner", &model.Type{Kind: model.Array, Len: 3, Elem: str}), f("Balance", i64)),
		"nested":      mk(f("Owner", str), f("Balance", i64), f("E", &model.Type{Kind: model.StructKind, Struct: nested})),
		"nested kind": mk(f("Owner", str), f("Balance", i64), f("E", &model.Type{Kind: model.StructKind, Struct: nested2})),
	}
	seen := map[string]string{StateSchema(base): "base"}
	for name, s := range different {
		h := StateSchema(s)
		if prev, dup := seen[h]; dup {
			t.Errorf("%s and %s have the same schema %s", name, prev, h)
		}
		seen[h] = name
	}
	// Recursive types terminate.
	node := &model.Struct{GoName: "Node"}
	node.Fields = []*model.Field{f("Kids", &model.Type{Kind: model.Slice, Elem: &model.Type{Kind: model.StructKind, Struct: node}})}
	if StateSchema(node) == "" {
		t.Error("empty schema for a recursive type")
	}
}
