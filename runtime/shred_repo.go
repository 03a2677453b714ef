package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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

// snapshotMagic starts a sealed snapshot's data.
const snapshotMagic = "cqS\x01"

// ForgottenSchema is the schema of the snapshot ForgetSubject leaves in
// place of a stream's snapshot: no aggregate has it, so loads ignore it and
// rebuild from events.
const ForgottenSchema = "cqrs.forgotten"

// sealSnapshot encrypts the encoded state of stream with the stream's
// snapshot key (a reserved subject of the KeyStore): a state may hold what
// Apply copied from fields tagged pii, and ForgetSubject destroys the
// snapshot keys of every stream that carried the subject, so that no old
// snapshot can be read (or, once the store has purged, found) afterwards.
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

// ForgetResult is what ForgetSubject did, or would do (PlanForget).
type ForgetResult struct {
	Subject string
	// Found reports whether the subject had a data key.
	Found bool
	// Streams are the streams recorded as holding the subject's sealed
	// data, sorted.
	Streams []StreamID
	// Snapshots counts the snapshots of those streams replaced (or to be
	// replaced) by a ForgottenSchema placeholder.
	Snapshots int
}

// PlanForget reports what ForgetSubject would do, changing nothing.
func PlanForget(ctx context.Context, store Store, subject string) (ForgetResult, error) {
	res := ForgetResult{Subject: subject}
	keys, err := subjectKeys(store, subject)
	if err != nil {
		return res, err
	}
	if res.Streams, res.Found, err = keys.SubjectStreams(ctx, subject); err != nil {
		return res, err
	}
	for _, st := range res.Streams {
		if _, err := store.LoadSnapshot(ctx, st); err == nil {
			res.Snapshots++
		} else if !errors.Is(err, ErrNotFound) {
			return res, err
		}
	}
	return res, nil
}

func subjectKeys(store Store, subject string) (KeyStore, error) {
	if err := ValidateSubject(subject); err != nil {
		return nil, err
	}
	keys, ok := KeysOf(store)
	if !ok {
		return nil, ErrNoKeyStore
	}
	return keys, nil
}

// ForgetSubject crypto-shreds subject: for every stream recorded as
// holding its sealed data it destroys the stream's snapshot key and
// replaces the stream's snapshot by a ForgottenSchema placeholder, then it
// destroys the subject's data key. Afterwards every load, projection, saga
// and export reads the subject's sealed values as ForgottenString; the
// events are not changed. Each step is idempotent: after a failure, call
// it again. Whether the destroyed keys' bytes also leave the store's files
// at once depends on the store (see its KeyStore and docs/guide.md).
//
// A snapshot saved concurrently from a state loaded before the key was
// destroyed can still hold the plaintext: forget a subject when its
// streams are not being written, or call ForgetSubject again afterwards.
func ForgetSubject(ctx context.Context, store Store, subject string) (ForgetResult, error) {
	res, err := PlanForget(ctx, store, subject)
	if err != nil || !res.Found {
		return res, err
	}
	keys, _ := KeysOf(store)
	res.Snapshots = 0
	for _, st := range res.Streams {
		if _, _, err := keys.ForgetSubject(ctx, snapshotSubject(st)); err != nil {
			return res, fmt.Errorf("cqrsgen: forgetting the snapshot key of %s: %w", st, err)
		}
		snap, err := store.LoadSnapshot(ctx, st)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		if snap.Schema != ForgottenSchema || len(snap.Data) > 0 {
			err = store.SaveSnapshot(ctx, Snapshot{Stream: st, Version: snap.Version, Schema: ForgottenSchema, Time: snap.Time})
			if errors.Is(err, ErrStreamDeleted) {
				// A deleted stream takes no snapshot (not even the
				// placeholder); a soft-deleted one keeps its last, sealed
				// under the stream's key destroyed above, so unreadable.
				continue
			}
			if err != nil {
				return res, fmt.Errorf("cqrsgen: replacing the snapshot of %s: %w", st, err)
			}
		}
		res.Snapshots++
	}
	if _, _, err := keys.ForgetSubject(ctx, subject); err != nil {
		return res, fmt.Errorf("cqrsgen: forgetting subject %q: %w", subject, err)
	}
	return res, nil
}
