package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime/wire"
	"github.com/vmihailenco/msgpack/v5"
)

func ptr[T any](v T) *T { return &v }

var when = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)

// full returns an All with every field set to a non-zero, mostly extreme,
// value.
func full() *All {
	zip := "75001"
	a := &All{
		Bool: true, Int: math.MinInt, Int8: math.MinInt8, Int16: math.MinInt16, Int32: math.MinInt32,
		Int64: math.MinInt64, Uint: math.MaxUint, Uint8: math.MaxUint8, Uint16: math.MaxUint16,
		Uint32: math.MaxUint32, Uint64: math.MaxUint64, Float32: math.MaxFloat32, Float64: -math.SmallestNonzeroFloat64,
		String: "héllo, 世界 🌍\x00end", Bytes: []byte{0, 1, 2, 255}, Time: when, Rune: '世', Byte: 0x7f,
		Duration: -90 * time.Minute, Cents: 12345, Tags: Tags{"a", "", "ü"}, Blob: Blob("blob"),
		Counts: Counts{"x": 1, "y": -1}, Grid: Grid{{1, 2, 3}, {math.MaxInt16, math.MinInt16, 0}},
		PInt: ptr(42), PString: ptr(""), PPInt: ptr(ptr(-7)), PTime: ptr(time.Unix(0, 1).UTC()),
		PAddr: &Address{Street: "1 Rue", City: "Paris", Zip: &zip},
		Ints:  []int{0, -1, math.MaxInt}, Strings: []string{}, Times: []time.Time{{}, when},
		Addrs: []Address{{City: "A"}, {}}, PAddrs: []*Address{nil, {Street: "s"}},
		Matrix: [][]float64{nil, {}, {1.5, math.Inf(1), math.Inf(-1)}}, ByteSlices: [][]byte{nil, {}, {9}},
		Array: [3]int32{math.MinInt32, 0, math.MaxInt32}, Hash: [4]byte{0xde, 0xad, 0xbe, 0xef},
		AddrArr: [2]Address{{Street: "x"}, {}}, PtrArr: [2]*int8{nil, ptr(int8(-128))},
		ByString: map[string]string{"": "empty", "k": ""}, ByInt: map[int]string{math.MinInt: "min", 0: "zero", math.MaxInt: "max"},
		ByInt8: map[int8]bool{-128: true, 127: false}, ByUint64: map[uint64][]string{math.MaxUint64: {"m"}, 0: nil},
		ByID: map[ID]Address{"id": {City: "c"}}, ByLevel: map[Level]*Address{0: nil, 255: {Street: "top"}},
		Nested:     map[string]map[int64][]byte{"a": {math.MinInt64: {1}, 1: nil}, "nil": nil, "empty": {}},
		TimesByKey: map[string]time.Time{"epoch": time.Unix(0, 0).UTC(), "far": time.Date(9999, 12, 31, 0, 0, 0, 1, time.UTC)},
		Addr:       Address{Street: "main"},
		Tree: Node{Name: "root", Next: &Node{Name: "next", Next: &Node{Name: "nextnext"}},
			Children: []Node{{Name: "c1", Children: []Node{{Name: "gc"}}}, {Name: "c2", Children: []Node{}}}},
		Renamed: "renamed",
	}
	a.SetHidden(-99)
	return a
}

// maxes is the other extreme of every integer width.
func maxes() *All {
	return &All{Int: math.MaxInt, Int8: math.MaxInt8, Int16: math.MaxInt16, Int32: math.MaxInt32, Int64: math.MaxInt64,
		Float32: -math.SmallestNonzeroFloat32, Float64: math.MaxFloat64, Rune: math.MinInt32,
		Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Duration: math.MinInt64, Cents: math.MinInt64,
		Bytes: []byte{}, Blob: Blob{}, Tags: Tags{}, Counts: Counts{}, Ints: []int{}, ByString: map[string]string{},
		Nested: map[string]map[int64][]byte{}, Array: [3]int32{1, 2, 3},
	}
}

func roundTrip(t *testing.T, in *All) *All {
	t.Helper()
	data, err := cqrsMarshalAll(in)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	out := new(All)
	if err := cqrsUnmarshalAll(data, out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	cases := map[string]*All{"zero": {}, "full": full(), "maxes": maxes()}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out := roundTrip(t, in)
			if !reflect.DeepEqual(in, out) {
				t.Errorf("round trip differs:\n in: %+v\nout: %+v", in, out)
			}
			if out.Hidden() != in.Hidden() {
				t.Errorf("unexported field: got %d, want %d", out.Hidden(), in.Hidden())
			}
		})
	}
}

func TestNilVersusEmpty(t *testing.T) {
	in := &All{Bytes: []byte{}, Tags: Tags{}, Counts: Counts{}, Ints: []int{}, ByString: map[string]string{},
		ByteSlices: [][]byte{nil, {}}, Nested: map[string]map[int64][]byte{"n": nil, "e": {}}}
	out := roundTrip(t, in)
	checks := []struct {
		name     string
		got, nil bool
	}{
		{"Bytes", out.Bytes == nil, false}, {"Blob", out.Blob == nil, true},
		{"Tags", out.Tags == nil, false}, {"Strings", out.Strings == nil, true},
		{"Counts", out.Counts == nil, false}, {"ByInt", out.ByInt == nil, true},
		{"Ints", out.Ints == nil, false}, {"ByString", out.ByString == nil, false},
		{"ByteSlices[0]", out.ByteSlices[0] == nil, true}, {"ByteSlices[1]", out.ByteSlices[1] == nil, false},
		{`Nested["n"]`, out.Nested["n"] == nil, true}, {`Nested["e"]`, out.Nested["e"] == nil, false},
		{"PAddr", out.PAddr == nil, true}, {"Matrix", out.Matrix == nil, true},
	}
	for _, c := range checks {
		if c.got != c.nil {
			t.Errorf("%s: nil = %v, want %v", c.name, c.got, c.nil)
		}
	}
}

func TestFloatsSpecial(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64} {
		in := &All{Float64: f, Float32: float32(f), Matrix: [][]float64{{f}}}
		out := roundTrip(t, in)
		if math.Float64bits(out.Float64) != math.Float64bits(f) || math.Float64bits(out.Matrix[0][0]) != math.Float64bits(f) {
			t.Errorf("float64 %v: got %v", f, out.Float64)
		}
		if math.Float32bits(out.Float32) != math.Float32bits(float32(f)) {
			t.Errorf("float32 %v: got %v", float32(f), out.Float32)
		}
	}
}

func TestTimeIsUTCAndNanosecond(t *testing.T) {
	loc := time.FixedZone("X", 5*3600+1800)
	for _, tm := range []time.Time{
		time.Date(2024, 1, 2, 3, 4, 5, 6, loc),
		time.Now(),                  // carries a monotonic reading, which is dropped
		time.Unix(1<<34, 999999999), // 12-byte form
		time.Unix(-1, 0), time.Unix(1<<32-1, 0), time.Unix(1<<32, 1), {},
	} {
		out := roundTrip(t, &All{Time: tm})
		if !out.Time.Equal(tm) || out.Time.Location() != time.UTC || out.Time != tm.UTC().Round(-1) && !tm.IsZero() {
			t.Errorf("time %v: got %v (%v)", tm, out.Time, out.Time.Location())
		}
		if tm.IsZero() && out.Time != (time.Time{}) {
			t.Errorf("zero time: got %#v", out.Time)
		}
	}
}

func TestRecursiveDepth(t *testing.T) {
	// A chain deeper than MaxDepth fails cleanly both ways.
	var head *Node
	for i := 0; i < wire.MaxDepth+2; i++ {
		head = &Node{Next: head}
	}
	if _, err := cqrsMarshalNode(head); !errors.Is(err, wire.ErrTooDeep) {
		t.Fatalf("marshal of a too deep chain: %v", err)
	}
	// Hand-build the same nesting as bytes: {"Next": {"Next": ...}}.
	var b []byte
	for i := 0; i < wire.MaxDepth+2; i++ {
		b = append(b, "\x81\xa4Next"...)
	}
	b = append(b, 0xc0)
	if err := cqrsUnmarshalNode(b, new(Node)); !errors.Is(err, wire.ErrTooDeep) {
		t.Fatalf("unmarshal of a too deep chain: %v", err)
	}
	// A chain well within the limit round-trips.
	head = nil
	for i := 0; i < 1000; i++ {
		head = &Node{Name: strings.Repeat("n", i%3), Next: head}
	}
	data, err := cqrsMarshalNode(head)
	if err != nil {
		t.Fatal(err)
	}
	var out Node
	if err := cqrsUnmarshalNode(data, &out); err != nil || !reflect.DeepEqual(&out, head) {
		t.Fatalf("chain of 1000: %v", err)
	}
}

// TestEncodeToReflection decodes generated encodings with msgpack.Unmarshal.
func TestEncodeToReflection(t *testing.T) {
	for name, in := range map[string]*All{"zero": {}, "full": full(), "maxes": maxes()} {
		t.Run(name, func(t *testing.T) {
			data, err := cqrsMarshalAll(in)
			if err != nil {
				t.Fatal(err)
			}
			var out All
			if err := msgpack.Unmarshal(data, &out); err != nil {
				t.Fatalf("msgpack.Unmarshal: %v", err)
			}
			compareReflection(t, in, &out)
		})
	}
}

// TestReflectionToDecode decodes msgpack.Marshal output with the generated
// decoder.
func TestReflectionToDecode(t *testing.T) {
	for name, in := range map[string]*All{"zero": {}, "full": full(), "maxes": maxes()} {
		t.Run(name, func(t *testing.T) {
			for _, compact := range []bool{false, true} {
				var buf bytes.Buffer
				enc := msgpack.NewEncoder(&buf)
				enc.UseCompactInts(compact)
				enc.UseCompactFloats(compact)
				if err := enc.Encode(in); err != nil {
					t.Fatal(err)
				}
				var out All
				if err := cqrsUnmarshalAll(buf.Bytes(), &out); err != nil {
					t.Fatalf("compact=%v: generated decode of msgpack.Marshal output: %v", compact, err)
				}
				compareReflection(t, in, &out)
			}
		})
	}
}

// compareReflection compares what survives reflection msgpack: everything
// but the unexported field, with times compared as instants (msgpack/v5
// decodes them in the local zone).
func compareReflection(t *testing.T, want, got *All) {
	t.Helper()
	w, g := *want, *got
	w.SetHidden(0)
	g.SetHidden(0)
	normTimes(&w)
	normTimes(&g)
	if !reflect.DeepEqual(&w, &g) {
		t.Errorf("differs:\nwant %+v\n got %+v", &w, &g)
	}
}

func normTimes(a *All) {
	a.Time = a.Time.UTC()
	if a.PTime != nil {
		a.PTime = ptr(a.PTime.UTC())
	}
	if a.Times != nil {
		ts := make([]time.Time, len(a.Times))
		for i, tm := range a.Times {
			ts[i] = tm.UTC()
		}
		a.Times = ts
	}
	if a.TimesByKey != nil {
		m := map[string]time.Time{}
		for k, tm := range a.TimesByKey {
			m[k] = tm.UTC()
		}
		a.TimesByKey = m
	}
}

func TestTypicalEventCrossCompat(t *testing.T) {
	in := typical()
	data, err := cqrsMarshalDeposited(in)
	if err != nil {
		t.Fatal(err)
	}
	var viaReflect Deposited
	if err := msgpack.Unmarshal(data, &viaReflect); err != nil {
		t.Fatal(err)
	}
	viaReflect.At = viaReflect.At.UTC()
	if !reflect.DeepEqual(in, &viaReflect) {
		t.Errorf("generated → reflection: %+v", viaReflect)
	}
	data, err = msgpack.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var viaGen Deposited
	if err := cqrsUnmarshalDeposited(data, &viaGen); err != nil || !reflect.DeepEqual(in, &viaGen) {
		t.Errorf("reflection → generated: %v %+v", err, viaGen)
	}
}

func typical() *Deposited {
	return &Deposited{Account: "acc-0001", Amount: 125_000, Currency: "EUR", At: when,
		Ref: "invoice 2024/118", Meta: map[string]string{"source": "api", "user": "u-42"}}
}

func TestSchemaEvolution(t *testing.T) {
	// An old record lacks fields (they stay zero) and has fields the
	// current struct dropped (of every msgpack type; they are skipped).
	old := map[string]any{
		"Account": "a", "Gone": []any{1, "x", map[string]any{"k": []byte{1}}, nil, true, 1.5, float32(2), when, int64(-1 << 40)},
		"Removed": map[string]any{"deep": map[string]any{"er": []any{}}}, "Amount": 7,
	}
	data, err := msgpack.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	var d Deposited
	if err := cqrsUnmarshalDeposited(data, &d); err != nil {
		t.Fatal(err)
	}
	if want := (Deposited{Account: "a", Amount: 7}); !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v, want %+v", d, want)
	}
	// Decoding resets the target: stale fields do not survive.
	d = *typical()
	if err := cqrsUnmarshalDeposited(data, &d); err != nil || d.Currency != "" || d.Meta != nil {
		t.Errorf("stale fields survived: %+v %v", d, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid, _ := cqrsMarshalDeposited(typical())
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty input", nil, wire.ErrShort},
		{"not a map", enc([]int{1}), wire.ErrType},
		{"int8 overflow", enc(map[string]any{"Int8": 128}), wire.ErrOverflow},
		{"int8 underflow", enc(map[string]any{"Int8": -129}), wire.ErrOverflow},
		{"uint8 overflow", enc(map[string]any{"Uint8": 256}), wire.ErrOverflow},
		{"uint negative", enc(map[string]any{"Uint64": -1}), wire.ErrOverflow},
		{"int64 from big uint64", enc(map[string]any{"Int64": uint64(math.MaxInt64 + 1)}), wire.ErrOverflow},
		{"int32 overflow", enc(map[string]any{"Int32": int64(math.MaxInt32 + 1)}), wire.ErrOverflow},
		{"named int16 elem overflow", enc(map[string]any{"Grid": [][]int{{1, 2, 1 << 15}, {0, 0, 0}}}), wire.ErrOverflow},
		{"float32 precision", enc(map[string]any{"Float32": 0.1}), wire.ErrOverflow},
		{"string for int", enc(map[string]any{"Int": "1"}), wire.ErrType},
		{"int for string", enc(map[string]any{"String": 1}), wire.ErrType},
		{"array too short", enc(map[string]any{"Array": []int{1, 2}}), wire.ErrLength},
		{"array too long", enc(map[string]any{"Array": []int{1, 2, 3, 4}}), wire.ErrLength},
		{"byte array length", enc(map[string]any{"Hash": []byte{1, 2, 3}}), wire.ErrLength},
		{"bad time ext length", []byte{0x81, 0xa4, 'T', 'i', 'm', 'e', 0xd5, 0xff, 0, 0}, wire.ErrInvalid},
		{"time nanoseconds", append([]byte{0x81, 0xa4, 'T', 'i', 'm', 'e', 0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00}, make([]byte, 8)...), wire.ErrInvalid},
		{"key not a string", []byte{0x81, 0x01, 0x01}, wire.ErrType},
		{"huge string length", []byte{0x81, 0xa6, 'S', 't', 'r', 'i', 'n', 'g', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, wire.ErrShort},
		{"huge slice length", []byte{0x81, 0xa4, 'I', 'n', 't', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff, 1}, wire.ErrShort},
		{"huge map length", []byte{0x81, 0xa5, 'B', 'y', 'I', 'n', 't', 0xdf, 0x7f, 0xff, 0xff, 0xff, 1, 1}, wire.ErrShort},
		{"huge unknown value", []byte{0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff, 1}, wire.ErrShort},
		{"reserved code", []byte{0x81, 0xa1, 'z', 0xc1}, wire.ErrInvalid},
		{"trailing bytes", append(valid[:len(valid):len(valid)], 0xc0), wire.ErrTrailing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a All
			err := cqrsUnmarshalAll(c.data, &a)
			if c.name == "trailing bytes" {
				err = cqrsUnmarshalDeposited(c.data, new(Deposited))
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestDecodeErrorNamesField(t *testing.T) {
	data, _ := msgpack.Marshal(map[string]any{"PAddr": map[string]any{"city": 5}})
	err := cqrsUnmarshalAll(data, new(All))
	var fe *wire.FieldError
	if !errors.As(err, &fe) || fe.Struct != "All" || fe.Key != "PAddr" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "All.PAddr: Address.city: ") {
		t.Errorf("message %q does not name the path", err)
	}
}

// TestTruncated checks that every proper prefix of a valid encoding is an
// error, not a panic or a silent success.
func TestTruncated(t *testing.T) {
	for name, in := range map[string]*All{"full": full(), "maxes": maxes(), "zero": {}} {
		data, err := cqrsMarshalAll(in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range data {
			if err := cqrsUnmarshalAll(data[:i], new(All)); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded without error", name, i, len(data))
			}
		}
	}
}

// TestCorrupt flips, inserts and deletes bytes of a valid encoding: decoding
// may succeed or fail, but must not panic, and must not allocate beyond a
// small multiple of the input.
func TestCorrupt(t *testing.T) {
	data, err := cqrsMarshalAll(full())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), data...)
		for n := 1 + rng.IntN(4); n > 0; n-- {
			p := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[p] = byte(rng.Uint32())
			case 1:
				b = append(b[:p], b[p+1:]...)
			default:
				b = append(b[:p], append([]byte{byte(rng.Uint32())}, b[p:]...)...)
			}
		}
		_ = cqrsUnmarshalAll(b, new(All))
	}
}

func FuzzUnmarshalAll(f *testing.F) {
	for _, in := range []*All{{}, full(), maxes()} {
		data, _ := cqrsMarshalAll(in)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a All
		if err := cqrsUnmarshalAll(data, &a); err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same value.
		again, err := cqrsMarshalAll(&a)
		if err != nil {
			t.Fatal(err)
		}
		var b All
		if err := cqrsUnmarshalAll(again, &b); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func TestEmptyStruct(t *testing.T) {
	data, err := cqrsMarshalEmpty(&Empty{})
	if err != nil || !bytes.Equal(data, []byte{0x80}) {
		t.Fatalf("got % x, %v", data, err)
	}
	if err := cqrsUnmarshalEmpty([]byte{0x81, 0xa1, 'x', 0x01}, new(Empty)); err != nil {
		t.Fatal(err)
	}
}

func TestAllocs(t *testing.T) {
	in := typical()
	data, _ := cqrsMarshalDeposited(in)
	var out Deposited
	// One copy of the record that the 8 strings are sliced from, and the
	// map (header and one group); one spare for map implementation changes.
	allocs := testing.AllocsPerRun(100, func() {
		if err := cqrsUnmarshalDeposited(data, &out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 {
		t.Errorf("decode allocates %v times per event", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = cqrsMarshalDeposited(in) }); allocs > 1 {
		t.Errorf("encode allocates %v times per event", allocs)
	}
}

// benchEvents are the typical event, and the same without its map (whose
// allocation both decoders pay and which dominates the generated decode).
func benchEvents() map[string]*Deposited {
	noMap := typical()
	noMap.Meta = nil
	return map[string]*Deposited{"typical": typical(), "nomap": noMap}
}

func BenchmarkDecode(b *testing.B) {
	for name, ev := range benchEvents() {
		data, _ := cqrsMarshalDeposited(ev)
		b.Run(name+"/generated", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d Deposited
				if err := cqrsUnmarshalDeposited(data, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/msgpack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d Deposited
				if err := msgpack.Unmarshal(data, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for name, ev := range benchEvents() {
		b.Run(name+"/generated", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cqrsMarshalDeposited(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/msgpack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := msgpack.Marshal(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
