package ctl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// maxDepth bounds how deeply decodeJSON nests arrays and maps.
const maxDepth = 1000

// msgpackToJSON renders one MessagePack value as JSON without knowing the
// Go type it was encoded from. Maps keep their encoded key order (generated
// codecs write struct fields in declaration order); non-string keys are
// rendered as their JSON text. bin becomes a base64 string, the timestamp
// extension an RFC 3339 string with nanoseconds (UTC), other extensions
// {"ext": type, "data": base64}, a sealed value (a field tagged pii)
// {"sealed": subject}, NaN and infinities the strings "NaN", "+Inf",
// "-Inf". It fails on malformed or trailing bytes and never panics.
//
// Sealed values are never opened here: what cqrsctl prints and exports
// holds no personal data in the clear, so that forgetting a subject also
// shreds every export and archive made before (their raw bodies hold only
// the ciphertext, whose key is then gone).
func msgpackToJSON(data []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	rest, err := decodeValue(data, &buf, 0)
	if err != nil {
		return nil, fmt.Errorf("at byte %d: %w", len(data)-len(rest), err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the value", wire.ErrTrailing, len(rest))
	}
	return buf.Bytes(), nil
}

// writeString writes s as a JSON string, leaving <, > and & as they are
// (the output is read by people and tools, not embedded in HTML).
func writeString(w *bytes.Buffer, s string) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	w.Truncate(w.Len() - 1) // Encode's newline
}

func decodeValue(b []byte, w *bytes.Buffer, depth int) ([]byte, error) {
	if len(b) == 0 {
		return b, wire.ErrShort
	}
	if depth > maxDepth {
		return b, wire.ErrTooDeep
	}
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= 0xd0 && c <= 0xd3):
		v, rest, err := wire.ReadInt64(b)
		if err == nil {
			w.WriteString(strconv.FormatInt(v, 10))
		}
		return rest, err
	case c >= 0xcc && c <= 0xcf:
		v, rest, err := wire.ReadUint64(b)
		if err == nil {
			w.WriteString(strconv.FormatUint(v, 10))
		}
		return rest, err
	case c == 0xca || c == 0xcb:
		var f float64
		var rest []byte
		var err error
		bits := 64
		if c == 0xca {
			var f32 float32
			f32, rest, err = wire.ReadFloat32(b)
			f, bits = float64(f32), 32
		} else {
			f, rest, err = wire.ReadFloat64(b)
		}
		if err != nil {
			return rest, err
		}
		switch {
		case math.IsNaN(f):
			w.WriteString(`"NaN"`)
		case math.IsInf(f, 1):
			w.WriteString(`"+Inf"`)
		case math.IsInf(f, -1):
			w.WriteString(`"-Inf"`)
		default:
			w.WriteString(strconv.FormatFloat(f, 'g', -1, bits))
		}
		return rest, nil
	case c == 0xc0:
		w.WriteString("null")
		return b[1:], nil
	case c == 0xc2:
		w.WriteString("false")
		return b[1:], nil
	case c == 0xc3:
		w.WriteString("true")
		return b[1:], nil
	case (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb):
		s, rest, err := wire.ReadString(b)
		if err == nil {
			writeString(w, s)
		}
		return rest, err
	case c >= 0xc4 && c <= 0xc6:
		v, rest, err := wire.ReadBytes(b)
		if err == nil {
			writeString(w, base64.StdEncoding.EncodeToString(v))
		}
		return rest, err
	case (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd:
		n, rest, err := wire.ReadArrayHeader(b)
		if err != nil {
			return rest, err
		}
		w.WriteByte('[')
		for i := range n {
			if i > 0 {
				w.WriteByte(',')
			}
			if rest, err = decodeValue(rest, w, depth+1); err != nil {
				return rest, err
			}
		}
		w.WriteByte(']')
		return rest, nil
	case (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf:
		n, rest, err := wire.ReadMapHeader(b)
		if err != nil {
			return rest, err
		}
		w.WriteByte('{')
		var key bytes.Buffer
		for i := range n {
			if i > 0 {
				w.WriteByte(',')
			}
			if len(rest) > 0 && ((rest[0] >= 0xa0 && rest[0] <= 0xbf) || (rest[0] >= 0xd9 && rest[0] <= 0xdb)) {
				if rest, err = decodeValue(rest, w, depth+1); err != nil {
					return rest, err
				}
			} else {
				key.Reset()
				if rest, err = decodeValue(rest, &key, depth+1); err != nil {
					return rest, err
				}
				writeString(w, key.String())
			}
			w.WriteByte(':')
			if rest, err = decodeValue(rest, w, depth+1); err != nil {
				return rest, err
			}
		}
		w.WriteByte('}')
		return rest, nil
	case (c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9):
		return decodeExt(b, w)
	}
	return b, fmt.Errorf("%w: reserved code 0x%02x", wire.ErrInvalid, c)
}

func decodeExt(b []byte, w *bytes.Buffer) ([]byte, error) {
	if subject, rest, ok, err := runtime.ReadSealedSubject(b); ok || err != nil {
		// A field tagged pii: its subject, never its plaintext (see
		// msgpackToJSON).
		if err != nil {
			return b, err
		}
		w.WriteString(`{"sealed":`)
		writeString(w, subject)
		w.WriteByte('}')
		return rest, nil
	}
	rest, err := wire.Skip(b)
	if err != nil {
		return b, err
	}
	raw := b[:len(b)-len(rest)]
	hdr := map[byte]int{0xd4: 1, 0xd5: 1, 0xd6: 1, 0xd7: 1, 0xd8: 1, 0xc7: 2, 0xc8: 3, 0xc9: 5}[raw[0]]
	if len(raw) < hdr+1 {
		return b, wire.ErrShort
	}
	typ := int8(raw[hdr])
	if typ == -1 {
		t, rest, err := wire.ReadTime(b)
		if err != nil {
			return rest, err
		}
		writeString(w, t.Format(time.RFC3339Nano))
		return rest, nil
	}
	fmt.Fprintf(w, `{"ext":%d,"data":`, typ)
	writeString(w, base64.StdEncoding.EncodeToString(raw[hdr+1:]))
	w.WriteByte('}')
	return rest, nil
}
