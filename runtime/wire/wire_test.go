package wire

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

var intEdges = []int64{
	0, 1, 31, 127, 128, 255, 256, 32767, 32768, 65535, 65536, math.MaxInt32, math.MaxInt32 + 1,
	math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
	-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64,
}

// TestIntsAgainstMsgpack: our smallest encoding is byte-identical to
// msgpack's EncodeInt, and we read every encoding msgpack can write.
func TestIntsAgainstMsgpack(t *testing.T) {
	for _, v := range intEdges {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		if err := enc.EncodeInt(v); err != nil {
			t.Fatal(err)
		}
		if got := AppendInt(nil, v); !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("AppendInt(%d) = % x, msgpack % x", v, got, buf.Bytes())
		}
		// Every fixed-width encoding msgpack offers, where the value fits.
		var encs [][]byte
		add := func(f func(*msgpack.Encoder) error) {
			var b bytes.Buffer
			if err := f(msgpack.NewEncoder(&b)); err != nil {
				t.Fatal(err)
			}
			encs = append(encs, b.Bytes())
		}
		add(func(e *msgpack.Encoder) error { return e.EncodeInt64(v) })
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			add(func(e *msgpack.Encoder) error { return e.EncodeInt32(int32(v)) })
		}
		if v >= 0 {
			add(func(e *msgpack.Encoder) error { return e.EncodeUint64(uint64(v)) })
			add(func(e *msgpack.Encoder) error { return e.EncodeUint(uint64(v)) })
		}
		for _, b := range encs {
			got, rest, err := ReadInt64(b)
			if err != nil || got != v || len(rest) != 0 {
				t.Errorf("ReadInt64(% x) = %d, %d left, %v; want %d", b, got, len(rest), err, v)
			}
			// Narrow widths: success exactly when the value fits.
			_, _, err8 := ReadInt8(b)
			if fits := v >= math.MinInt8 && v <= math.MaxInt8; fits != (err8 == nil) || (!fits && !errors.Is(err8, ErrOverflow)) {
				t.Errorf("ReadInt8(%d): %v", v, err8)
			}
			_, _, errU32 := ReadUint32(b)
			if fits := v >= 0 && v <= math.MaxUint32; fits != (errU32 == nil) || (!fits && !errors.Is(errU32, ErrOverflow)) {
				t.Errorf("ReadUint32(%d): %v", v, errU32)
			}
		}
		var back int64
		if err := msgpack.Unmarshal(AppendInt(nil, v), &back); err != nil || back != v {
			t.Errorf("msgpack reads AppendInt(%d) as %d, %v", v, back, err)
		}
	}
	for _, u := range []uint64{math.MaxInt64 + 1, math.MaxUint64} {
		b := AppendUint(nil, u)
		if got, _, err := ReadUint64(b); err != nil || got != u {
			t.Errorf("ReadUint64(%d) = %d, %v", u, got, err)
		}
		if _, _, err := ReadInt64(b); !errors.Is(err, ErrOverflow) {
			t.Errorf("ReadInt64(%d): %v, want overflow", u, err)
		}
	}
}

func TestValuesAgainstMsgpack(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), 40000))
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(1<<32-1, 0), time.Unix(1<<32, 5), time.Unix(1<<34, 0),
		time.Unix(-1, 999999999), time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC)}
	for _, s := range []string{"", "a", string(make([]byte, 31)), string(make([]byte, 32)), string(make([]byte, 256)), long} {
		want, _ := msgpack.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(len %d) differs from msgpack", len(s))
		}
		if got, rest, err := ReadString(want); err != nil || got != s || len(rest) != 0 {
			t.Errorf("ReadString(len %d): %v", len(s), err)
		}
		bin, _ := msgpack.Marshal([]byte(s))
		if got := AppendBytes(nil, []byte(s)); !bytes.Equal(got, bin) {
			t.Errorf("AppendBytes(len %d) differs from msgpack", len(s))
		}
		if got, _, err := ReadBytes(bin); err != nil || string(got) != s || got == nil {
			t.Errorf("ReadBytes(len %d): %v", len(s), err)
		}
	}
	for _, tm := range times {
		want, _ := msgpack.Marshal(tm)
		if got := AppendTime(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("AppendTime(%v) = % x, msgpack % x", tm, got, want)
		}
		got, rest, err := ReadTime(want)
		if err != nil || !got.Equal(tm) || got.Location() != time.UTC || len(rest) != 0 {
			t.Errorf("ReadTime(%v) = %v, %v", tm, got, err)
		}
	}
	for _, f := range []float64{0, -1.5, math.Inf(1), math.MaxFloat64} {
		want, _ := msgpack.Marshal(f)
		if got := AppendFloat64(nil, f); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat64(%v) differs", f)
		}
		want32, _ := msgpack.Marshal(float32(f))
		if got := AppendFloat32(nil, float32(f)); !bytes.Equal(got, want32) {
			t.Errorf("AppendFloat32(%v) differs", f)
		}
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		var a, m bytes.Buffer
		_ = msgpack.NewEncoder(&a).EncodeArrayLen(n)
		_ = msgpack.NewEncoder(&m).EncodeMapLen(n)
		if got := AppendArrayHeader(nil, n); !bytes.Equal(got, a.Bytes()) {
			t.Errorf("AppendArrayHeader(%d) differs", n)
		}
		if got := AppendMapHeader(nil, n); !bytes.Equal(got, m.Bytes()) {
			t.Errorf("AppendMapHeader(%d) differs", n)
		}
	}
	if got := AppendBytes(nil, nil); !bytes.Equal(got, []byte{0xc0}) {
		t.Errorf("AppendBytes(nil) = % x", got)
	}
}

// TestSkip skips values msgpack wrote, of every type, followed by a marker.
func TestSkip(t *testing.T) {
	values := []any{nil, true, false, 1, -1, 300, -300, 1 << 40, uint64(math.MaxUint64), float32(1.5), 2.5,
		"", "x", string(make([]byte, 300)), []byte{}, make([]byte, 70000), []any{}, []any{1, "a", []any{nil}},
		map[string]any{"a": map[string]any{"b": []any{1, 2}}}, time.Unix(1<<35, 3), time.Unix(1, 0),
		make([]int, 20), make([]int, 70000)}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, 0xc3)
		rest, err := Skip(b)
		if err != nil || !bytes.Equal(rest, []byte{0xc3}) {
			t.Errorf("Skip(%T): % x left, %v", v, rest, err)
		}
		// Every proper prefix of a value is ErrShort.
		for i := 0; i < len(b)-1; i += 1 + i/64 {
			if _, err := Skip(b[:i]); !errors.Is(err, ErrShort) {
				t.Errorf("Skip(%T prefix %d): %v", v, i, err)
				break
			}
		}
	}
	// Extensions of every size.
	for _, b := range [][]byte{{0xd4, 1, 0}, {0xd5, 1, 0, 0}, {0xd8, 1, 15: 0, 16: 0, 17: 0}, {0xc7, 2, 5, 0, 0}, {0xc8, 0, 1, 5, 0}, {0xc9, 0, 0, 0, 0, 5}} {
		if rest, err := Skip(b); err != nil || len(rest) != 0 {
			t.Errorf("Skip(% x): %d left, %v", b, len(rest), err)
		}
	}
}

// TestDeclaredLengths: a length larger than the input is an error before
// anything is allocated.
func TestDeclaredLengths(t *testing.T) {
	huge := [][]byte{
		{0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0x7f, 0xff, 0xff, 0xff, 1}, {0xdd, 0xff, 0xff, 0xff, 0xff, 1},
		{0xdf, 0xff, 0xff, 0xff, 0xff, 1, 1}, {0xc9, 0xff, 0xff, 0xff, 0xff, 1}, {0x9f, 1}, {0x8f, 1, 1, 1},
	}
	for _, b := range huge {
		if _, err := Skip(b); !errors.Is(err, ErrShort) {
			t.Errorf("Skip(% x): %v", b, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, _ = ReadString(b)
		_, _, _ = ReadBytes(b)
		_, _, _ = ReadArrayHeader(b)
		_, _, _ = ReadMapHeader(b)
		runtime.ReadMemStats(&after)
		// TotalAlloc counts every goroutine of the process (the race
		// detector, the GC, parallel tests), so the bound is loose: what it
		// catches is allocating what the header declares (≥ 2 GiB here).
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("% x: %d bytes allocated", b, n)
		}
	}
	if _, _, err := ReadArrayHeader([]byte{0x92, 1}); !errors.Is(err, ErrShort) {
		t.Errorf("array of 2 with 1 byte: %v", err)
	}
	if _, _, err := ReadMapHeader([]byte{0x82, 1, 1, 1}); !errors.Is(err, ErrShort) {
		t.Errorf("map of 2 with 3 bytes: %v", err)
	}
}

func TestReadStringIn(t *testing.T) {
	data := AppendString(AppendString(nil, "hello"), "wörld")
	src := Source(data)
	a, rest, err := ReadStringIn(data, src)
	if err != nil || a != "hello" {
		t.Fatal(a, err)
	}
	b, rest, err := ReadStringIn(rest, src)
	if err != nil || b != "wörld" || len(rest) != 0 {
		t.Fatal(b, err)
	}
	// Without a source, and with a source over the limit, it copies.
	if got, _, _ := ReadStringIn(data, ""); got != "hello" {
		t.Errorf("no source: %q", got)
	}
	if Source(make([]byte, MaxShared+1)) != "" {
		t.Error("Source of a large input is shared")
	}
}

// TestStableSource: strings read against StableSource are slices of the
// input itself, whatever its size (Source would copy it, or give up over
// MaxShared); Source's strings never alias the input.
func TestStableSource(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), MaxShared))
	data := AppendString(AppendString(nil, "hello"), long)
	aliases := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		start := uintptr(unsafe.Pointer(&data[0]))
		return p >= start && p+uintptr(len(s)) <= start+uintptr(len(data))
	}
	for _, c := range []struct {
		name    string
		src     string
		aliases bool
	}{
		{"StableSource", StableSource(data), true},
		{"Source", Source(data), false},
	} {
		a, rest, err := ReadStringIn(data, c.src)
		if err != nil || a != "hello" {
			t.Fatalf("%s: %q, %v", c.name, a, err)
		}
		b, rest, err := ReadStringIn(rest, c.src)
		if err != nil || b != long || len(rest) != 0 {
			t.Fatalf("%s: long string: %d bytes, %v", c.name, len(b), err)
		}
		if aliases(a) != c.aliases || aliases(b) != c.aliases {
			t.Errorf("%s: strings alias the input: %v, %v; want %v", c.name, aliases(a), aliases(b), c.aliases)
		}
	}
	if StableSource(nil) != "" || StableSource([]byte{}) != "" {
		t.Error("StableSource of an empty input is not empty")
	}
}

func TestTypeErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{}
	add := func(name string, err error) {
		cases = append(cases, struct {
			name string
			err  error
		}{name, err})
	}
	_, _, err := ReadBool([]byte{0x01})
	add("bool", err)
	_, _, err = ReadInt([]byte{0xa1, 'x'})
	add("int", err)
	_, _, err = ReadFloat64([]byte{0xa1, 'x'})
	add("float", err)
	_, _, err = ReadString([]byte{0x01})
	add("string", err)
	_, _, err = ReadTime([]byte{0x01})
	add("time", err)
	_, _, err = ReadMapHeader([]byte{0x90})
	add("map", err)
	for _, c := range cases {
		var te *TypeError
		if !errors.Is(c.err, ErrType) || !errors.As(c.err, &te) || te.Want == "" {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}
