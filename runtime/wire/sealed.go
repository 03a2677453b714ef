package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// Sealed values: a field tagged `cqrs:"pii=…"` is stored as a MessagePack
// extension of type SealedType whose data starts with SealedMagic; the rest
// of the data (the subject, the key id, the nonce and the ciphertext) is
// package runtime's business (runtime.OpenRecord). Generated decoders never
// read one: the runtime replaces every sealed value of a record by its
// plaintext, or by a placeholder once the subject is forgotten, before it
// decodes the record.

// SealedType is the MessagePack extension type of a sealed value.
const SealedType = 0x50

// SealedMagic starts the data of every sealed value: a tag and the format
// version.
const SealedMagic = "cqP\x01"

// ErrSealed reports a sealed value where a decoder wants its plaintext:
// the record was decoded without being opened (runtime.OpenRecord) first.
var ErrSealed = errors.New("wire: sealed personal data: the record must be opened (runtime.OpenRecord) before it is decoded")

// sealedMarker is what every sealed value holds right after its header.
var sealedMarker = []byte{SealedType, 'c', 'q', 'P', 1}

// HasSealed reports whether data may hold a sealed value. It is a fast
// byte search: false means there is none; true may be a coincidence of
// the user's bytes, which a walk of the record then rules out.
func HasSealed(data []byte) bool { return bytes.Contains(data, sealedMarker) }

// AppendExtHeader appends the header of an extension of type typ with n
// bytes of data (ext8, ext16 or ext32; never a fixext, so that the type
// byte always directly follows a header of at least two bytes).
func AppendExtHeader(b []byte, typ int8, n int) []byte {
	switch {
	case n <= 0xff:
		return append(b, cExt8, byte(n), byte(typ))
	case n <= 0xffff:
		return append(b, cExt16, byte(n>>8), byte(n), byte(typ))
	}
	return append(b, cExt32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), byte(typ))
}

// ReadSealed reports whether b starts with a sealed value and, if so,
// returns its data after SealedMagic (aliasing b) and the rest of b. A
// malformed sealed value is an error; any other value is (nil, b, false,
// nil).
func ReadSealed(b []byte) (data, rest []byte, ok bool, err error) {
	if len(b) == 0 {
		return nil, b, false, ErrShort
	}
	var n, hdr int
	switch b[0] {
	case cExt8:
		hdr = 3
		if len(b) >= 2 {
			n = int(b[1])
		}
	case cExt16:
		hdr = 4
		if len(b) >= 3 {
			n = int(binary.BigEndian.Uint16(b[1:]))
		}
	case cExt32:
		hdr = 6
		if len(b) >= 5 {
			n = int(binary.BigEndian.Uint32(b[1:]))
		}
	default:
		return nil, b, false, nil
	}
	if len(b) < hdr {
		return nil, b, false, ErrShort
	}
	if int8(b[hdr-1]) != SealedType {
		return nil, b, false, nil
	}
	if n > len(b)-hdr {
		return nil, b, false, ErrShort
	}
	data = b[hdr : hdr+n]
	if !bytes.HasPrefix(data, []byte(SealedMagic)) {
		return nil, b, false, ErrInvalid
	}
	return data[len(SealedMagic):], b[hdr+n:], true, nil
}

// ReadOpenedString reads a string like ReadStringIn, for a field tagged
// pii: a sealed value there is ErrSealed, since opened records hold the
// plaintext (or the placeholder) instead.
func ReadOpenedString(b []byte, src string) (string, []byte, error) {
	if _, _, ok, _ := ReadSealed(b); ok {
		return "", b, ErrSealed
	}
	return ReadStringIn(b, src)
}
