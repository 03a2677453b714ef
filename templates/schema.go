package templates

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/cqrsgen/cqrsgen/internal/codegen/model"
)

// StateSchema returns a stable hash of a state struct's shape: its wire
// keys and their kinds, recursively through pointers, slices, arrays, maps
// and nested structs, in field order. Go names of types and fields do not
// count (renaming is safe); a changed key, kind or field order does, so
// snapshots of an older shape are ignored rather than misread. The result
// is "v1:" and the first 16 hex digits of a SHA-256.
func StateSchema(s *model.Struct) string {
	var b strings.Builder
	writeStruct(&b, s, map[*model.Struct]int{})
	sum := sha256.Sum256([]byte(b.String()))
	return "v1:" + hex.EncodeToString(sum[:8])
}

// writeStruct writes a canonical description. A struct met again while
// being described (recursive types) is written as a back-reference to its
// depth, so the description is finite and still shape-sensitive.
func writeStruct(b *strings.Builder, s *model.Struct, open map[*model.Struct]int) {
	if s == nil {
		b.WriteString("nil")
		return
	}
	if depth, ok := open[s]; ok {
		b.WriteString("^" + strconv.Itoa(depth))
		return
	}
	open[s] = len(open)
	b.WriteString("{")
	for i, f := range s.Fields {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.Quote(f.Key))
		b.WriteString(":")
		writeType(b, f.Type, open)
	}
	b.WriteString("}")
	delete(open, s)
}

func writeType(b *strings.Builder, t *model.Type, open map[*model.Struct]int) {
	if t == nil {
		b.WriteString("nil")
		return
	}
	b.WriteString(t.Kind.String())
	switch t.Kind {
	case model.Pointer, model.Slice:
		b.WriteString("(")
		writeType(b, t.Elem, open)
		b.WriteString(")")
	case model.Array:
		b.WriteString("[" + strconv.FormatInt(t.Len, 10) + "](")
		writeType(b, t.Elem, open)
		b.WriteString(")")
	case model.Map:
		b.WriteString("(")
		writeType(b, t.Key, open)
		b.WriteString(")(")
		writeType(b, t.Elem, open)
		b.WriteString(")")
	case model.StructKind:
		writeStruct(b, t.Struct, open)
	}
}
