package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/sealkey"
)

// ForgottenSchema is the schema of the snapshot ForgetSubject leaves in
// place of a stream's snapshot: no aggregate has it, so loads ignore it and
// rebuild from events.
const ForgottenSchema = "cqrs.forgotten"

// ForgetResult is what ForgetSubject did, or would do (PlanForget).
type ForgetResult struct {
	Subject string
	// Found reports whether the subject had a data key.
	Found bool
	// Streams are the streams recorded as holding the subject's sealed
	// data, sorted.
	Streams []runtime.StreamID
	// Snapshots counts the snapshots of those streams replaced (or to be
	// replaced) by a ForgottenSchema placeholder.
	Snapshots int
}

// PlanForget reports what ForgetSubject would do, changing nothing.
func PlanForget(ctx context.Context, store runtime.Store, subject string) (ForgetResult, error) {
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
		} else if !errors.Is(err, runtime.ErrNotFound) {
			return res, err
		}
	}
	return res, nil
}

func subjectKeys(store runtime.Store, subject string) (runtime.KeyStore, error) {
	if err := runtime.ValidateSubject(subject); err != nil {
		return nil, err
	}
	keys, ok := runtime.KeysOf(store)
	if !ok {
		return nil, runtime.ErrNoKeyStore
	}
	return keys, nil
}

// ForgetSubject crypto-shreds subject: for every stream recorded as
// holding its sealed data it destroys the stream's snapshot key and
// replaces the stream's snapshot by a ForgottenSchema placeholder, then it
// destroys the subject's data key. Afterwards every load, projection, saga
// and export reads the subject's sealed values as runtime.ForgottenString;
// the events are not changed. Each step is idempotent: after a failure,
// call it again. Whether the destroyed keys' bytes also leave the store's
// files at once depends on the store (see its runtime.KeyStore and
// docs/guide.md).
//
// A snapshot saved concurrently from a state loaded before the key was
// destroyed can still hold the plaintext: forget a subject when its
// streams are not being written, or call ForgetSubject again afterwards.
func ForgetSubject(ctx context.Context, store runtime.Store, subject string) (ForgetResult, error) {
	res, err := PlanForget(ctx, store, subject)
	if err != nil || !res.Found {
		return res, err
	}
	keys, _ := runtime.KeysOf(store)
	res.Snapshots = 0
	for _, st := range res.Streams {
		if _, _, err := keys.ForgetSubject(ctx, sealkey.SnapshotSubject(st.Type, st.ID)); err != nil {
			return res, fmt.Errorf("cqrsgen: forgetting the snapshot key of %s: %w", st, err)
		}
		snap, err := store.LoadSnapshot(ctx, st)
		if errors.Is(err, runtime.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		if snap.Schema != ForgottenSchema || len(snap.Data) > 0 {
			err = store.SaveSnapshot(ctx, runtime.Snapshot{Stream: st, Version: snap.Version, Schema: ForgottenSchema, Time: snap.Time})
			if errors.Is(err, runtime.ErrStreamDeleted) {
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
