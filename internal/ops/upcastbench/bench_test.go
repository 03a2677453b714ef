package upcastbench

import (
	"testing"
)

// cases are stored forms with the same payload (Amount 42, a 12-byte
// Ref), decoded current, through one upcaster, and through three.
func cases(tb testing.TB) []struct {
	name   string
	wire   string
	schema uint32
	data   []byte
} {
	v1, err := cqrsMarshalMovedV1(&MovedV1{Amount: 42, Ref: "ref-00000001"})
	if err != nil {
		tb.Fatal(err)
	}
	p1, err := cqrsMarshalPaidV1(&PaidV1{Amount: 42, Ref: "ref-00000001"})
	if err != nil {
		tb.Fatal(err)
	}
	cur, err := cqrsMarshalNoted(&Noted{Amount: 42, Ref: "ref-00000001"})
	if err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name   string
		wire   string
		schema uint32
		data   []byte
	}{
		{"current", NotedEventName, NotedSchemaVersion, cur},
		{"upcast1", PaidEventName, 1, p1},
		{"upcast3", MovedEventName, 1, v1},
	}
}

// TestChains checks what the benchmark decodes: every form arrives as the
// current type with the same values.
func TestChains(t *testing.T) {
	for _, c := range cases(t) {
		e, err := LedgerEvents().Decode(c.wire, c.schema, c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var l Ledger
		l.Apply(e)
		if l.N != 42 {
			t.Fatalf("%s: decoded %#v", c.name, e)
		}
	}
	if _, err := LedgerEvents().Decode(MovedEventName, 5, nil); err == nil {
		t.Fatal("unknown version decoded")
	}
}

// BenchmarkDecode decodes one event stored current, one version old (one
// upcaster) and three versions old (three upcasters).
func BenchmarkDecode(b *testing.B) {
	for _, c := range cases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := LedgerEvents().Decode(c.wire, c.schema, c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
