package runtime

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cqrsgen/cqrsgen/runtime/internal/wrap"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// Crypto-shredding. An event field tagged `cqrs:"pii=Subject"` is stored
// sealed: encrypted with AES-256-GCM under a data key of the subject whose
// id the event's Subject field holds. The data keys live in the store's
// KeyStore; forgetting a subject (lifecycle.ForgetSubject) deletes its
// key, after which every sealed value of that subject reads as a
// placeholder (ForgottenString) and the events themselves never change.

// ForgottenString is what a pii string field reads as once its key is gone.
const ForgottenString = "[forgotten]"

// IsForgotten reports whether s is the placeholder of a forgotten subject's
// string.
func IsForgotten(s string) bool { return s == ForgottenString }

// ErrNoKeyStore reports sealed data over a store without a KeyStore; nothing is written.
var ErrNoKeyStore = errors.New("cqrsgen: the store keeps no data keys (crypto-shredding needs a KeyStore)")

// DataKeySize is the size of a data key: AES-256.
const DataKeySize = 32

// DataKey is one subject's data key. A value sealed under a forgotten key names
// an ID no stored key has, and reads as forgotten.
type DataKey struct {
	ID  [8]byte
	Key [DataKeySize]byte
}

// NewDataKey returns a random data key.
func NewDataKey() (DataKey, error) {
	var k DataKey
	if _, err := rand.Read(k.ID[:]); err != nil {
		return k, fmt.Errorf("cqrsgen: generating a data key: %w", err)
	}
	if _, err := rand.Read(k.Key[:]); err != nil {
		return k, fmt.Errorf("cqrsgen: generating a data key: %w", err)
	}
	return k, nil
}

// KeyStore keeps the data keys of subjects: a store capability that KeysOf
// finds behind wrappers. The runtime generates the keys; the KeyStore only
// keeps them. The contract for store authors: package storekit.
type KeyStore interface {
	// SubjectKey returns subject's data key, storing fresh first when it has none.
	SubjectKey(ctx context.Context, subject string, stream StreamID, fresh DataKey) (DataKey, error)
	// LoadSubjectKey returns subject's data key, or ErrNotFound.
	LoadSubjectKey(ctx context.Context, subject string) (DataKey, error)
	// SubjectStreams returns the streams holding data sealed under subject's key.
	SubjectStreams(ctx context.Context, subject string) (streams []StreamID, found bool, err error)
	// ForgetSubject deletes subject's data key and its streams, durably.
	ForgetSubject(ctx context.Context, subject string) (streams []StreamID, found bool, err error)
}

// KeysOf returns the KeyStore of store, or of a store its wrappers' Unwrap
// methods lead to (a wrapper that scopes names, such as a tenant's view,
// implements KeyStore itself so that it is found first).
func KeysOf(store Store) (KeyStore, bool) {
	k := wrap.Find(store, func(s Store) (KeyStore, bool) {
		k, ok := s.(KeyStore)
		return k, ok
	})
	return k, k != nil
}

// ValidateSubject checks a subject id: 1 to MaxIDLength bytes, not
// starting with a NUL byte (reserved for the runtime's own keys).
func ValidateSubject(subject string) error {
	if err := ValidateKey("subject", subject); err != nil {
		return err
	}
	if subject[0] == 0 {
		return fmt.Errorf("%w: subject starts with a NUL byte (reserved)", ErrInvalid)
	}
	return nil
}

// Sealer seals the pii fields of one append's events, for generated codecs.
type Sealer struct {
	ctx    context.Context
	keys   KeyStore
	stream StreamID
	cache  []subjectKey
}

type subjectKey struct {
	subject string
	key     DataKey
	aead    cipher.AEAD
}

// NewSealer returns a sealer for stream under keys (nil: ErrNoKeyStore).
func NewSealer(ctx context.Context, keys KeyStore, stream StreamID) *Sealer {
	return &Sealer{ctx: ctx, keys: keys, stream: stream}
}

func (s *Sealer) key(subject string) (subjectKey, error) {
	for _, k := range s.cache {
		if k.subject == subject {
			return k, nil
		}
	}
	if s.keys == nil {
		return subjectKey{}, ErrNoKeyStore
	}
	fresh, err := NewDataKey()
	if err != nil {
		return subjectKey{}, err
	}
	dk, err := s.keys.SubjectKey(s.ctx, subject, s.stream, fresh)
	if err != nil {
		return subjectKey{}, fmt.Errorf("cqrsgen: data key of subject %q: %w", subject, err)
	}
	aead, err := newAEAD(dk)
	if err != nil {
		return subjectKey{}, err
	}
	k := subjectKey{subject: subject, key: dk, aead: aead}
	s.cache = append(s.cache, k)
	return k, nil
}

func newAEAD(k DataKey) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.Key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// The kinds of sealed plaintext: what the placeholder is.
const sealedString = 's'

// String appends value, field field of an event of subject, sealed (a
// wire.SealedType extension; see docs/guide.md, "Crypto-shredding").
func (s *Sealer) String(b []byte, field, subject, value string) ([]byte, error) {
	if s == nil {
		return b, ErrNoKeyStore
	}
	if err := ValidateSubject(subject); err != nil {
		return b, fmt.Errorf("cqrsgen: sealing field %s: %w", field, err)
	}
	k, err := s.key(subject)
	if err != nil {
		return b, err
	}
	plain := wire.AppendString(nil, value)
	hdr := sealedHeader(sealedString, subject, k.key.ID)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return b, fmt.Errorf("cqrsgen: sealing field %s: %w", field, err)
	}
	n := len(wire.SealedMagic) + len(hdr) + len(nonce) + len(plain) + k.aead.Overhead()
	b = wire.AppendExtHeader(b, wire.SealedType, n)
	b = append(b, wire.SealedMagic...)
	b = append(b, hdr...)
	b = append(b, nonce...)
	ad := append(hdr, field...)
	return k.aead.Seal(b, nonce, plain, ad), nil
}

// sealedHeader is the part of a sealed value between the magic and the
// nonce: kind, uvarint subject length, subject, key id.
func sealedHeader(kind byte, subject string, id [8]byte) []byte {
	h := make([]byte, 0, 1+binary.MaxVarintLen64+len(subject)+8+64)
	h = append(h, kind)
	h = binary.AppendUvarint(h, uint64(len(subject)))
	h = append(h, subject...)
	return append(h, id[:]...)
}

// sealed is a parsed sealed value.
type sealed struct {
	kind    byte
	subject string
	id      [8]byte
	hdr     []byte // kind to key id, for the associated data
	rest    []byte // nonce and ciphertext
}

func parseSealed(data []byte) (sealed, error) {
	var s sealed
	if len(data) < 1 {
		return s, wire.ErrShort
	}
	s.kind = data[0]
	n, m := binary.Uvarint(data[1:])
	if m <= 0 || n > uint64(len(data)) || 1+m+int(n)+8 > len(data) {
		return s, wire.ErrShort
	}
	off := 1 + m
	s.subject = string(data[off : off+int(n)])
	off += int(n)
	copy(s.id[:], data[off:off+8])
	off += 8
	s.hdr, s.rest = data[:off], data[off:]
	return s, nil
}

// opener opens sealed values, fetching each subject's key once.
type opener struct {
	ctx  context.Context
	keys KeyStore
	got  map[string]cipher.AEAD // nil AEAD: no key
	ids  map[string][8]byte
}

func newOpener(ctx context.Context, keys KeyStore) *opener {
	return &opener{ctx: ctx, keys: keys}
}

// open returns the plaintext MessagePack value of a sealed value of field,
// or the placeholder when its key is gone.
func (o *opener) open(field string, data []byte) ([]byte, error) {
	s, err := parseSealed(data)
	if err != nil {
		return nil, err
	}
	if s.kind != sealedString {
		return nil, fmt.Errorf("%w: sealed value of unknown kind %q", wire.ErrInvalid, s.kind)
	}
	aead, err := o.aead(s.subject, s.id)
	if err != nil {
		return nil, err
	}
	if aead == nil {
		return wire.AppendString(nil, ForgottenString), nil
	}
	ns := aead.NonceSize()
	if len(s.rest) < ns+aead.Overhead() {
		return nil, wire.ErrShort
	}
	ad := append(slices.Clip(s.hdr), field...)
	plain, err := aead.Open(nil, s.rest[:ns], s.rest[ns:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value of subject %q does not authenticate", ErrCorrupt, s.subject)
	}
	return plain, nil
}

// aead returns the cipher of subject's key if its id is id, nil when the
// subject has no such key.
func (o *opener) aead(subject string, id [8]byte) (cipher.AEAD, error) {
	if a, ok := o.got[subject]; ok {
		if a == nil || o.ids[subject] != id {
			return nil, nil
		}
		return a, nil
	}
	if o.keys == nil {
		return nil, ErrNoKeyStore
	}
	dk, err := o.keys.LoadSubjectKey(o.ctx, subject)
	var a cipher.AEAD
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("cqrsgen: data key of subject %q: %w", subject, err)
	default:
		if a, err = newAEAD(dk); err != nil {
			return nil, err
		}
	}
	if o.got == nil {
		o.got, o.ids = map[string]cipher.AEAD{}, map[string][8]byte{}
	}
	o.got[subject], o.ids[subject] = a, dk.ID
	if a == nil || dk.ID != id {
		return nil, nil
	}
	return a, nil
}

// OpenRecord returns rec with its sealed values opened (ForgottenString once
// the key is gone; nil keys: ErrNoKeyStore; a forged value: a *DecodeError).
// Code that decodes records it read itself must call it.
func OpenRecord(ctx context.Context, keys KeyStore, rec Record) (Record, error) {
	if !wire.HasSealed(rec.Data) {
		return rec, nil
	}
	return openRecord(newOpener(ctx, keys), rec)
}

// openRecord is OpenRecord with o's keys.
func openRecord(o *opener, rec Record) (Record, error) {
	data, err := openData(o, rec.Data)
	if err != nil {
		return rec, &DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "sealed fields of " + rec.Name, Err: err}
	}
	rec.Data = data
	return rec, nil
}

// openData rewrites the top-level map of an encoded event, opening its
// sealed values (fields tagged pii are top-level fields of events). It
// returns data itself when it holds none.
func openData(o *opener, data []byte) ([]byte, error) {
	n, b, err := wire.ReadMapHeader(data)
	if err != nil {
		return nil, err
	}
	var out []byte // nil until the first sealed value
	copied := 0    // bytes of data already in out
	for range n {
		key, rest, err := wire.ReadStringBytes(b)
		if err != nil {
			return nil, err
		}
		val, after, ok, err := wire.ReadSealed(rest)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		if !ok {
			if b, err = wire.Skip(rest); err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			continue
		}
		plain, err := o.open(string(key), val)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		start := len(data) - len(rest)
		out = append(out, data[copied:start]...)
		out = append(out, plain...)
		copied = len(data) - len(after)
		b = after
	}
	if len(b) != 0 {
		return nil, wire.TrailingError(len(b))
	}
	if out == nil {
		return data, nil
	}
	return append(out, data[copied:]...), nil
}

// hasSealed reports whether rec may hold sealed values (see wire.HasSealed).
func hasSealed(rec Record) bool { return wire.HasSealed(rec.Data) }

// RecordKeys is implemented by a store whose records are sealed under several
// KeyStores (a view across tenants): KeysFor returns the one that opens rec.
type RecordKeys interface {
	KeysFor(rec Record) (KeyStore, bool)
}

// OpenRecordFrom is OpenRecord with the keys of store, the store rec was
// read from (its RecordKeys, else KeysOf). The projection and saga
// runners call it before decoding; so should code that decodes the
// records it reads itself.
func OpenRecordFrom(ctx context.Context, store Store, rec Record) (Record, error) {
	if !hasSealed(rec) {
		return rec, nil
	}
	var keys KeyStore
	if rk := wrap.Find(store, func(s Store) (RecordKeys, bool) { r, ok := s.(RecordKeys); return r, ok }); rk != nil {
		keys, _ = rk.KeysFor(rec)
	} else {
		keys, _ = KeysOf(store)
	}
	return OpenRecord(ctx, keys, rec)
}

// ReadSealedSubject reports whether b starts with a sealed value and, if
// so, returns the id of the subject it belongs to and the rest of b; tools
// that render records without opening them (cqrsctl's exports) show that.
func ReadSealedSubject(b []byte) (subject string, rest []byte, ok bool, err error) {
	data, rest, ok, err := wire.ReadSealed(b)
	if !ok || err != nil {
		return "", b, ok, err
	}
	s, err := parseSealed(data)
	if err != nil {
		return "", b, false, err
	}
	return s.subject, rest, true, nil
}
