package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/tenant"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// testShredding checks the store's runtime.KeyStore, the capability
// crypto-shredding needs. A store without one must make ForgetSubject fail
// with runtime.ErrNoKeyStore, which is all that is checked then.
func (h *harness) testShredding(t *testing.T) {
	s := h.open(t)
	if _, ok := runtime.KeysOf(s); !ok {
		if _, err := lifecycle.ForgetSubject(ctx(t), s, "u"); !errors.Is(err, runtime.ErrNoKeyStore) {
			t.Errorf("ForgetSubject on a store without keys: %v, want ErrNoKeyStore", err)
		}
		return
	}
	t.Run("Keys", h.shredKeys)
	t.Run("Subjects", h.shredSubjects)
	t.Run("Forget", h.shredForget)
	t.Run("BadInput", h.shredBadInput)
	t.Run("Closed", h.shredClosed)
	t.Run("Records", h.shredRecords)
	t.Run("Tenants", h.shredTenants)
	t.Run("Reopen", h.shredReopen)
}

func keysOf(t *testing.T, s runtime.Store) runtime.KeyStore {
	t.Helper()
	k, ok := runtime.KeysOf(s)
	if !ok {
		t.Fatal("store lost its KeyStore")
	}
	return k
}

func freshKey(t *testing.T) runtime.DataKey {
	t.Helper()
	k, err := runtime.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// shredKeys: the first fresh key is kept, later ones ignored; streams are
// recorded once each, sorted.
func (h *harness) shredKeys(t *testing.T) {
	k := keysOf(t, h.open(t))
	first := freshKey(t)
	streams := []runtime.StreamID{stream("b", "2"), stream("a", "x"), stream("a", "1"), stream("b", "2")}
	for i, st := range streams {
		fresh := first
		if i > 0 {
			fresh = freshKey(t)
		}
		got, err := k.SubjectKey(ctx(t), "alice", st, fresh)
		if err != nil || got != first {
			t.Fatalf("SubjectKey #%d = %x, %v; want the first key", i, got.ID, err)
		}
	}
	if got, err := k.LoadSubjectKey(ctx(t), "alice"); err != nil || got != first {
		t.Errorf("LoadSubjectKey = %x, %v", got.ID, err)
	}
	got, found, err := k.SubjectStreams(ctx(t), "alice")
	want := []runtime.StreamID{stream("a", "1"), stream("a", "x"), stream("b", "2")}
	if err != nil || !found || !slices.Equal(got, want) {
		t.Errorf("SubjectStreams = %v, %v, %v; want %v", got, found, err, want)
	}
	if _, err := k.LoadSubjectKey(ctx(t), "bob"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadSubjectKey of an unknown subject: %v, want ErrNotFound", err)
	}
	if got, found, err := k.SubjectStreams(ctx(t), "bob"); err != nil || found || len(got) != 0 {
		t.Errorf("SubjectStreams of an unknown subject = %v, %v, %v", got, found, err)
	}
}

// shredSubjects: subjects built to collide have keys of their own, and
// forgetting one forgets no other.
func (h *harness) shredSubjects(t *testing.T) {
	k := keysOf(t, h.open(t))
	keys := map[string]runtime.DataKey{}
	for _, sub := range collidingNames {
		fresh := freshKey(t)
		if _, err := k.SubjectKey(ctx(t), sub, stream("T", sub), fresh); err != nil {
			t.Fatalf("SubjectKey(%q): %v", sub, err)
		}
		keys[sub] = fresh
	}
	if _, found, err := k.ForgetSubject(ctx(t), "a"); err != nil || !found {
		t.Fatalf("ForgetSubject(a): %v, %v", found, err)
	}
	for _, sub := range collidingNames {
		got, err := k.LoadSubjectKey(ctx(t), sub)
		switch {
		case sub == "a" && !errors.Is(err, runtime.ErrNotFound):
			t.Errorf("LoadSubjectKey(a) after forgetting it: %v", err)
		case sub != "a" && (err != nil || got != keys[sub]):
			t.Errorf("LoadSubjectKey(%q) = %x, %v; want its own key", sub, got.ID, err)
		}
		if streams, _, _ := k.SubjectStreams(ctx(t), sub); sub != "a" && !slices.Equal(streams, []runtime.StreamID{stream("T", sub)}) {
			t.Errorf("SubjectStreams(%q) = %v", sub, streams)
		}
	}
}

// shredForget: forgetting returns the streams, is final and idempotent, and
// a subject met again gets the fresh key it is then given.
func (h *harness) shredForget(t *testing.T) {
	k := keysOf(t, h.open(t))
	old := freshKey(t)
	if _, err := k.SubjectKey(ctx(t), "alice", stream("T", "1"), old); err != nil {
		t.Fatal(err)
	}
	streams, found, err := k.ForgetSubject(ctx(t), "alice")
	if err != nil || !found || !slices.Equal(streams, []runtime.StreamID{stream("T", "1")}) {
		t.Fatalf("ForgetSubject = %v, %v, %v", streams, found, err)
	}
	if _, err := k.LoadSubjectKey(ctx(t), "alice"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("LoadSubjectKey after ForgetSubject: %v, want ErrNotFound", err)
	}
	if streams, found, err := k.ForgetSubject(ctx(t), "alice"); err != nil || found || len(streams) != 0 {
		t.Errorf("second ForgetSubject = %v, %v, %v; want nothing found", streams, found, err)
	}
	fresh := freshKey(t)
	if got, err := k.SubjectKey(ctx(t), "alice", stream("T", "2"), fresh); err != nil || got != fresh {
		t.Errorf("SubjectKey after forgetting = %x, %v; want the new fresh key", got.ID, err)
	}
	if streams, _, _ := k.SubjectStreams(ctx(t), "alice"); !slices.Equal(streams, []runtime.StreamID{stream("T", "2")}) {
		t.Errorf("streams of the new key = %v; want only the new stream", streams)
	}
}

func (h *harness) shredBadInput(t *testing.T) {
	k := keysOf(t, h.open(t))
	long := strings.Repeat("s", runtime.MaxIDLength+1)
	for _, tc := range []struct {
		name    string
		subject string
		stream  runtime.StreamID
		want    error
	}{
		{"EmptySubject", "", stream("T", "1"), runtime.ErrInvalid},
		{"LongSubject", long, stream("T", "1"), runtime.ErrTooLarge},
		{"EmptyStreamID", "alice", stream("T", ""), runtime.ErrInvalid},
	} {
		if _, err := k.SubjectKey(ctx(t), tc.subject, tc.stream, freshKey(t)); !errors.Is(err, tc.want) {
			t.Errorf("%s: SubjectKey: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := k.LoadSubjectKey(ctx(t), ""); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("LoadSubjectKey(\"\"): %v, want ErrInvalid", err)
	}
	if _, _, err := k.ForgetSubject(ctx(t), ""); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("ForgetSubject(\"\"): %v, want ErrInvalid", err)
	}
	if _, found, _ := k.SubjectStreams(ctx(t), "alice"); found {
		t.Error("a refused SubjectKey stored a key")
	}
}

func (h *harness) shredClosed(t *testing.T) {
	s := h.open(t)
	k := keysOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.SubjectKey(ctx(t), "alice", stream("T", "1"), freshKey(t)); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("SubjectKey on a closed store: %v, want ErrClosed", err)
	}
	if _, err := k.LoadSubjectKey(ctx(t), "alice"); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("LoadSubjectKey on a closed store: %v, want ErrClosed", err)
	}
	if _, _, err := k.ForgetSubject(ctx(t), "alice"); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("ForgetSubject on a closed store: %v, want ErrClosed", err)
	}
}

// sealedEvent appends to st an event {"User": subject, "Email": email}
// with Email sealed as generated code seals a field tagged pii.
func sealedEvent(t *testing.T, s runtime.Store, st runtime.StreamID, subject, email string) runtime.AppendResult {
	t.Helper()
	keys, _ := runtime.KeysOf(s)
	b := wire.AppendMapHeader(nil, 2)
	b = wire.AppendString(wire.AppendString(b, "User"), subject)
	b, err := runtime.NewSealer(ctx(t), keys, st).String(wire.AppendString(b, "Email"), "Email", subject, email)
	if err != nil {
		t.Fatalf("sealing: %v", err)
	}
	return mustAppend(t, s, st, runtime.AnyVersion, runtime.EventData{Name: "Joined", Schema: 1, Data: b})
}

// emails opens every record of s but tombstones and returns their Email
// fields.
func emails(t *testing.T, s runtime.Store) []string {
	t.Helper()
	keys, _ := runtime.KeysOf(s)
	var out []string
	for rec, err := range s.ReadAll(ctx(t), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if runtime.IsTombstone(rec) {
			continue
		}
		rec, err = runtime.OpenRecord(ctx(t), keys, rec)
		if err != nil {
			t.Fatalf("OpenRecord: %v", err)
		}
		n, b, err := wire.ReadMapHeader(rec.Data)
		for i := 0; err == nil && i < n; i++ {
			var key, val string
			key, b, err = wire.ReadString(b)
			if err == nil {
				val, b, err = wire.ReadString(b)
			}
			if key == "Email" {
				out = append(out, val)
			}
		}
		if err != nil {
			t.Fatalf("opened record %s v%d does not decode: %v", rec.Stream, rec.Version, err)
		}
	}
	return out
}

// shredRecords: sealed values open to their plaintext, and to the
// placeholder once ForgetSubject ran; the snapshots of the subject's
// streams are replaced.
func (h *harness) shredRecords(t *testing.T) {
	s := h.open(t)
	sealedEvent(t, s, stream("M", "1"), "alice", "alice@example.com")
	sealedEvent(t, s, stream("M", "2"), "bob", "bob@example.com")
	sealedEvent(t, s, stream("M", "1"), "alice", "alice@example.org")
	for _, id := range []string{"1", "2"} {
		if err := s.SaveSnapshot(ctx(t), runtime.Snapshot{Stream: stream("M", id), Version: 1, Schema: "m", Data: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := emails(t, s); !slices.Equal(got, []string{"alice@example.com", "bob@example.com", "alice@example.org"}) {
		t.Fatalf("opened emails = %q", got)
	}
	plan, err := lifecycle.PlanForget(ctx(t), s, "alice")
	if err != nil || !plan.Found || plan.Snapshots != 1 || !slices.Equal(plan.Streams, []runtime.StreamID{stream("M", "1")}) {
		t.Fatalf("PlanForget = %+v, %v", plan, err)
	}
	if got := emails(t, s); got[0] != "alice@example.com" {
		t.Fatalf("PlanForget changed something: %q", got)
	}
	if res, err := lifecycle.ForgetSubject(ctx(t), s, "alice"); err != nil || res.Snapshots != 1 {
		t.Fatalf("ForgetSubject = %+v, %v", res, err)
	}
	f := runtime.ForgottenString
	if got := emails(t, s); !slices.Equal(got, []string{f, "bob@example.com", f}) {
		t.Errorf("emails after forgetting alice = %q", got)
	}
	if snap, err := s.LoadSnapshot(ctx(t), stream("M", "1")); err != nil || snap.Schema != lifecycle.ForgottenSchema || len(snap.Data) != 0 {
		t.Errorf("alice's stream's snapshot = %+v, %v; want the placeholder", snap, err)
	}
	if snap, err := s.LoadSnapshot(ctx(t), stream("M", "2")); err != nil || string(snap.Data) != "state" {
		t.Errorf("bob's stream's snapshot = %+v, %v; want it unchanged", snap, err)
	}
}

// shredTenants: a tenant's subject is its own; forgetting it in one tenant
// leaves another tenant's subject of the same id readable.
func (h *harness) shredTenants(t *testing.T) {
	s := h.open(t)
	a, _ := tenant.Scope(s, "a")
	b, _ := tenant.Scope(s, "b")
	sealedEvent(t, a, stream("M", "1"), "alice", "a-alice")
	sealedEvent(t, b, stream("M", "1"), "alice", "b-alice")
	if _, err := lifecycle.ForgetSubject(ctx(t), a, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := emails(t, a); !slices.Equal(got, []string{runtime.ForgottenString}) {
		t.Errorf("tenant a after forgetting = %q", got)
	}
	if got := emails(t, b); !slices.Equal(got, []string{"b-alice"}) {
		t.Errorf("tenant b after a forgot its alice = %q", got)
	}
}

// shredReopen: keys and forgetting survive a reopen.
func (h *harness) shredReopen(t *testing.T) {
	if h.f.Reopen == nil {
		return // an in-memory store: nothing to survive
	}
	s := h.open(t)
	sealedEvent(t, s, stream("M", "1"), "alice", "alice@example.com")
	sealedEvent(t, s, stream("M", "2"), "bob", "bob@example.com")
	s = h.reopen(t, s)
	if got := emails(t, s); !slices.Equal(got, []string{"alice@example.com", "bob@example.com"}) {
		t.Fatalf("emails after reopen = %q", got)
	}
	if _, err := lifecycle.ForgetSubject(ctx(t), s, "alice"); err != nil {
		t.Fatal(err)
	}
	s = h.reopen(t, s)
	if got := emails(t, s); !slices.Equal(got, []string{runtime.ForgottenString, "bob@example.com"}) {
		t.Errorf("emails after forgetting and reopening = %q", got)
	}
}
