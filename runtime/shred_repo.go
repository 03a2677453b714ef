package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime/internal/sealkey"
)

// sealingTable is what a registry.Events table adds for aggregates with
// fields tagged pii; the Repository seals through it.
type sealingTable[E any] interface {
	Sealing() bool
	EncodeSealed(e E, s *Sealer) (EventData, error)
}

// sealing reports whether the repository's aggregate has events with
// fields tagged pii.
func (r *Repository[S, E, C]) sealing() bool {
	t, ok := r.agg.Events.(sealingTable[E])
	return ok && t.Sealing()
}

// encodeEvent encodes e for stream, sealing its fields tagged pii with the
// store's keys (*s is made on first use and reused for the batch).
func (r *Repository[S, E, C]) encodeEvent(ctx context.Context, stream StreamID, e E, s **Sealer) (EventData, error) {
	t, ok := r.agg.Events.(sealingTable[E])
	if !ok || !t.Sealing() {
		return r.agg.EncodeEvent(e)
	}
	if *s == nil {
		keys, _ := KeysOf(r.store)
		*s = NewSealer(ctx, keys, stream)
	}
	return t.EncodeSealed(e, *s)
}

// opener returns the function that opens the sealed values of the records
// of one read (see OpenRecord), fetching each subject's key once for the
// whole read.
func (r *Repository[S, E, C]) opener(ctx context.Context) func(Record) (Record, error) {
	var o *opener
	return func(rec Record) (Record, error) {
		if !hasSealed(rec) {
			return rec, nil
		}
		if o == nil {
			keys, _ := KeysOf(r.store)
			o = newOpener(ctx, keys)
		}
		return openRecord(o, rec)
	}
}

// snapshotSubject is the reserved subject whose key seals the snapshots of
// stream (see sealSnapshot and lifecycle.ForgetSubject).
func snapshotSubject(stream StreamID) string { return sealkey.SnapshotSubject(stream.Type, stream.ID) }

// snapshotMagic starts a sealed snapshot's data.
const snapshotMagic = sealkey.SnapshotMagic

// sealSnapshot encrypts the encoded state of stream with the stream's
// snapshot key (a reserved subject of the KeyStore): a state may hold what
// Apply copied from fields tagged pii, and lifecycle.ForgetSubject
// destroys the snapshot keys of every stream that carried the subject, so
// that no old snapshot can be read (or, once the store has purged, found)
// afterwards.
func sealSnapshot(ctx context.Context, keys KeyStore, stream StreamID, data []byte) ([]byte, error) {
	if keys == nil {
		return nil, ErrNoKeyStore
	}
	fresh, err := NewDataKey()
	if err != nil {
		return nil, err
	}
	dk, err := keys.SubjectKey(ctx, snapshotSubject(stream), stream, fresh)
	if err != nil {
		return nil, fmt.Errorf("cqrsgen: snapshot key of %s: %w", stream, err)
	}
	aead, err := newAEAD(dk)
	if err != nil {
		return nil, err
	}
	out := append([]byte(snapshotMagic), dk.ID[:]...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, data, []byte(snapshotSubject(stream))), nil
}

// errSnapshotKey reports a sealed snapshot whose key is gone: the stream
// is rebuilt from its events.
var errSnapshotKey = errors.New("cqrsgen: the snapshot's key is gone")

// openSnapshot decrypts what sealSnapshot wrote.
func openSnapshot(ctx context.Context, keys KeyStore, stream StreamID, data []byte) ([]byte, error) {
	if keys == nil {
		return nil, ErrNoKeyStore
	}
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, fmt.Errorf("%w: snapshot is not sealed", ErrCorrupt)
	}
	data = data[len(snapshotMagic):]
	dk, err := keys.LoadSubjectKey(ctx, snapshotSubject(stream))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errSnapshotKey
	case err != nil:
		return nil, err
	}
	if len(data) < 8 || !bytes.Equal(data[:8], dk.ID[:]) {
		return nil, errSnapshotKey
	}
	aead, err := newAEAD(dk)
	if err != nil {
		return nil, err
	}
	data = data[8:]
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed snapshot too short", ErrCorrupt)
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(snapshotSubject(stream)))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed snapshot does not authenticate", ErrCorrupt)
	}
	return plain, nil
}
