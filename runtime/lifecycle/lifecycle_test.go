package lifecycle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/sealkey"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// bare hides every method of a store but runtime.Store's.
type bare struct{ runtime.Store }

func TestDeleteStreamUnsupported(t *testing.T) {
	_, err := lifecycle.DeleteStream(context.Background(), bare{memory.New()}, runtime.StreamID{Type: "T", ID: "x"}, runtime.HardDelete)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("DeleteStream on a store without the capability: %v; want errors.ErrUnsupported", err)
	}
	_, err = lifecycle.DeleteStream(context.Background(), memory.New(), runtime.StreamID{Type: "T", ID: "x"}, 0)
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("DeleteStream with mode 0: %v; want ErrInvalid", err)
	}
}

func TestIdempotencyExpired(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := runtime.IdempotencyRecord{Key: "k", Time: t0}
	for _, tt := range []struct {
		ttl  time.Duration
		now  time.Time
		want bool
	}{
		{0, t0.Add(1000 * time.Hour), false},
		{-time.Hour, t0.Add(1000 * time.Hour), false},
		{time.Hour, t0, false},
		{time.Hour, t0.Add(time.Hour - 1), false},
		{time.Hour, t0.Add(time.Hour), true},
		{time.Hour, t0.Add(2 * time.Hour), true},
	} {
		if got := lifecycle.IdempotencyExpired(rec, tt.ttl, tt.now); got != tt.want {
			t.Errorf("IdempotencyExpired(ttl %v, now t0+%v) = %v, want %v", tt.ttl, tt.now.Sub(t0), got, tt.want)
		}
	}
}

// forgetCounter counts the ForgetSubject calls that reach its store.
type forgetCounter struct {
	*memory.Store
	forgets int
}

func (f *forgetCounter) ForgetSubject(ctx context.Context, subject string) ([]runtime.StreamID, bool, error) {
	f.forgets++
	return f.Store.ForgetSubject(ctx, subject)
}

// TestHardDeleteDestroysSnapshotKey: a hard delete of a stream whose
// snapshot is sealed destroys the snapshot's key (ForgetSubject no longer
// lists the stream, so would never reach it); a soft delete keeps it, and
// a stream with a plain snapshot or none costs no key store call.
func TestHardDeleteDestroysSnapshotKey(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		mode     runtime.DeleteMode
		snapshot []byte // nil: none
		gone     bool
		forgets  int
	}{
		{"hard, sealed snapshot", runtime.HardDelete, []byte(sealkey.SnapshotMagic + "rest"), true, 1},
		{"soft, sealed snapshot", runtime.SoftDelete, []byte(sealkey.SnapshotMagic + "rest"), false, 0},
		{"hard, plain snapshot", runtime.HardDelete, []byte{0x80}, false, 0},
		{"hard, no snapshot", runtime.HardDelete, nil, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &forgetCounter{Store: memory.New()}
			st := runtime.StreamID{Type: "T", ID: "x"}
			if _, err := store.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream,
				Events: []runtime.EventData{{Name: "E", Schema: 1, Data: []byte{0x80}}}}); err != nil {
				t.Fatal(err)
			}
			fresh, err := runtime.NewDataKey()
			if err != nil {
				t.Fatal(err)
			}
			sub := sealkey.SnapshotSubject(st.Type, st.ID)
			if _, err := store.SubjectKey(ctx, sub, st, fresh); err != nil {
				t.Fatal(err)
			}
			if c.snapshot != nil {
				if err := store.SaveSnapshot(ctx, runtime.Snapshot{Stream: st, Version: 1, Schema: "s", Data: c.snapshot}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := lifecycle.DeleteStream(ctx, store, st, c.mode); err != nil {
				t.Fatal(err)
			}
			_, err = store.LoadSubjectKey(ctx, sub)
			if gone := errors.Is(err, runtime.ErrNotFound); gone != c.gone {
				t.Errorf("LoadSubjectKey of the snapshot key after the delete: %v; want it gone: %v", err, c.gone)
			}
			if store.forgets != c.forgets {
				t.Errorf("ForgetSubject called %d times, want %d", store.forgets, c.forgets)
			}
		})
	}
}
