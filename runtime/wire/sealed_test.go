package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

func TestReadSealed(t *testing.T) {
	for _, n := range []int{10, 255, 256, 65535, 65536} {
		payload := []byte(wire.SealedMagic + strings.Repeat("x", n-len(wire.SealedMagic)))
		b := wire.AppendExtHeader(nil, wire.SealedType, len(payload))
		b = append(append(b, payload...), 0xc0) // and a nil after it
		if !wire.HasSealed(b) {
			t.Errorf("%d bytes: HasSealed is false", n)
		}
		if rest, err := wire.Skip(b); err != nil || len(rest) != 1 {
			t.Errorf("%d bytes: Skip = %d left, %v", n, len(rest), err)
		}
		data, rest, ok, err := wire.ReadSealed(b)
		if err != nil || !ok || !bytes.Equal(data, payload[len(wire.SealedMagic):]) || !bytes.Equal(rest, []byte{0xc0}) {
			t.Errorf("%d bytes: ReadSealed = %d bytes, rest %x, %v, %v", n, len(data), rest, ok, err)
		}
		if _, _, err := wire.ReadOpenedString(b, ""); !errors.Is(err, wire.ErrSealed) {
			t.Errorf("%d bytes: ReadOpenedString of a sealed value: %v, want ErrSealed", n, err)
		}
		for cut := range len(b) - 1 - len(payload) + len(wire.SealedMagic) {
			if _, _, ok, err := wire.ReadSealed(b[:cut]); ok || (cut > 0 && err == nil) {
				t.Errorf("%d bytes cut at %d: ok %v, err %v", n, cut, ok, err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
		err  error
	}{
		{"string", wire.AppendString(nil, "cqP\x01"), false, nil},
		{"other ext", append(wire.AppendExtHeader(nil, 7, 5), "cqP\x01x"...), false, nil},
		{"timestamp", wire.AppendTime(nil, time.Unix(1700000000, 5)), false, nil},
		{"no magic", append(wire.AppendExtHeader(nil, wire.SealedType, 5), "abcde"...), false, wire.ErrInvalid},
		{"empty", nil, false, wire.ErrShort},
	} {
		_, _, ok, err := wire.ReadSealed(tc.b)
		if ok != tc.ok || !errors.Is(err, tc.err) {
			t.Errorf("%s: ok %v, err %v; want %v, %v", tc.name, ok, err, tc.ok, tc.err)
		}
	}
	if s, _, err := wire.ReadOpenedString(wire.AppendString(nil, "plain"), ""); err != nil || s != "plain" {
		t.Errorf("ReadOpenedString of a string = %q, %v", s, err)
	}
}
