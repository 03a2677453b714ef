package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// A hand-written aggregate with one event whose Email field is tagged pii
// (subject: User), its codec written the way generated code writes it.

type member struct{ Email string }

type memberEvent interface{ isMemberEvent() int }

type joined struct{ User, Email string }

func (joined) isMemberEvent() int { return 0 }

func (m *member) applyJoined(e joined) { m.Email = e.Email }

func marshalJoined(e joined, s *runtime.Sealer) ([]byte, error) {
	b := wire.AppendMapHeader(nil, 2)
	b = wire.AppendString(b, "User")
	b = wire.AppendString(b, e.User)
	b = wire.AppendString(b, "Email")
	return s.String(b, "Email", e.User, e.Email)
}

func unmarshalJoined(data []byte) (e joined, err error) {
	n, b, err := wire.ReadMapHeader(data)
	for i := 0; err == nil && i < n; i++ {
		var k string
		if k, b, err = wire.ReadString(b); err != nil {
			break
		}
		switch k {
		case "User":
			e.User, b, err = wire.ReadString(b)
		case "Email":
			e.Email, b, err = wire.ReadOpenedString(b, "")
		default:
			b, err = wire.Skip(b)
		}
	}
	return e, err
}

func encodeMember(m *member) ([]byte, error) { return wire.AppendString(nil, m.Email), nil }
func decodeMember(b []byte, m *member) (err error) {
	m.Email, _, err = wire.ReadString(b)
	return err
}

func memberTable() *registry.Events[member, memberEvent] {
	return registry.NewEvents("Member", memberEvent.isMemberEvent,
		registry.SealedEvent[memberEvent]("Joined", 1, (*member).applyJoined, marshalJoined, unmarshalJoined))
}

func newMembers(store runtime.Store, snapshotEvery uint64) *runtime.Repository[member, memberEvent, runtime.NoCommand] {
	return runtime.NewRepository(store, &runtime.Aggregate[member, memberEvent, runtime.NoCommand]{
		Type: "Member", StateSchema: "member-v1", SnapshotEvery: snapshotEvery, Events: memberTable(),
		EncodeState: encodeMember, DecodeState: decodeMember,
	})
}

// noKeys hides the memory store's KeyStore.
type noKeys struct{ runtime.Store }

const secret = "ada@example.com"

func storedBytes(t *testing.T, s runtime.Store) []byte {
	t.Helper()
	var all []byte
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rec.Data...)
	}
	return all
}

func TestShredSealsAndOpens(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	repo := newMembers(store, 0)
	if _, err := repo.Append(ctx, "m1", runtime.NoStream, joined{User: "ada", Email: secret}); err != nil {
		t.Fatal(err)
	}
	if raw := storedBytes(t, store); bytes.Contains(raw, []byte(secret)) || !wire.HasSealed(raw) {
		t.Fatalf("stored event holds the plaintext or no sealed value: %q", raw)
	}
	state, _, err := repo.Load(ctx, "m1")
	if err != nil || state.Email != secret {
		t.Fatalf("Load = %+v, %v; want the plaintext", state, err)
	}
	for env, err := range repo.Events(ctx, "m1", 0) {
		if err != nil || env.Event.(joined).Email != secret {
			t.Fatalf("Events = %+v, %v", env, err)
		}
	}
	// Without the repository's sealer the event cannot be encoded at all.
	if _, err := memberTable().Encode(joined{User: "ada", Email: secret}); !errors.Is(err, runtime.ErrNoKeyStore) {
		t.Errorf("Events.Encode of a sealed event: %v, want ErrNoKeyStore", err)
	}
	// Nor appended to a store without keys: nothing is written.
	if _, err := newMembers(noKeys{store}, 0).Append(ctx, "m2", runtime.NoStream, joined{User: "bob", Email: "b@x"}); !errors.Is(err, runtime.ErrNoKeyStore) {
		t.Errorf("Append over a store without keys: %v, want ErrNoKeyStore", err)
	}
	if v, _ := store.StreamVersion(ctx, runtime.StreamID{Type: "Member", ID: "m2"}); v != 0 {
		t.Errorf("m2 has version %d after a refused append", v)
	}
	// An empty subject is refused.
	if _, err := repo.Append(ctx, "m3", runtime.NoStream, joined{Email: "x"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Append with an empty subject: %v, want ErrInvalid", err)
	}
}

func TestShredForget(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	repo := newMembers(store, 1) // a snapshot after every event
	for _, id := range []string{"m1", "m2"} {
		if _, err := repo.Append(ctx, id, runtime.NoStream, joined{User: "ada", Email: secret}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repo.Append(ctx, "m3", runtime.NoStream, joined{User: "bob", Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	m1 := runtime.StreamID{Type: "Member", ID: "m1"}
	snap, err := store.LoadSnapshot(ctx, m1)
	if err != nil || bytes.Contains(snap.Data, []byte(secret)) {
		t.Fatalf("snapshot %q, %v: want one, sealed", snap.Data, err)
	}
	plan, err := lifecycle.PlanForget(ctx, store, "ada")
	if err != nil || !plan.Found || len(plan.Streams) != 2 || plan.Snapshots != 2 {
		t.Fatalf("PlanForget = %+v, %v; want 2 streams and 2 snapshots", plan, err)
	}
	if s, _ := store.LoadSubjectKey(ctx, "ada"); s == (runtime.DataKey{}) {
		t.Fatal("PlanForget removed the key")
	}
	res, err := lifecycle.ForgetSubject(ctx, store, "ada")
	if err != nil || !res.Found || res.Snapshots != 2 {
		t.Fatalf("ForgetSubject = %+v, %v", res, err)
	}
	if snap, err := store.LoadSnapshot(ctx, m1); err != nil || snap.Schema != lifecycle.ForgottenSchema || len(snap.Data) != 0 {
		t.Errorf("snapshot after forgetting = %+v, %v; want the placeholder", snap, err)
	}
	state, v, err := repo.Load(ctx, "m1")
	if err != nil || v != 1 || state.Email != runtime.ForgottenString {
		t.Fatalf("Load after forgetting = %+v v%d, %v; want the placeholder", state, v, err)
	}
	if state, _, err := repo.Load(ctx, "m3"); err != nil || state.Email != "bob@example.com" {
		t.Errorf("another subject's data: %+v, %v", state, err)
	}
	// A projection reads the placeholder and does not fail.
	seen := make(chan string, 3)
	p := projection.Projection{Name: "emails", Handle: func(ctx context.Context, rec runtime.Record) error {
		e, err := unmarshalJoined(rec.Data)
		seen <- e.Email
		return err
	}}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- projection.Run(runCtx, store, p) }()
	for _, want := range []string{runtime.ForgottenString, runtime.ForgottenString, "bob@example.com"} {
		if got := <-seen; got != want {
			t.Errorf("projection saw %q, want %q", got, want)
		}
	}
	cancel()
	<-done
	// Forgetting again is a no-op; a subject seen again gets a new key,
	// under which only its new data reads.
	if res, err := lifecycle.ForgetSubject(ctx, store, "ada"); err != nil || res.Found {
		t.Errorf("second ForgetSubject = %+v, %v", res, err)
	}
	if _, err := repo.Append(ctx, "m1", 1, joined{User: "ada", Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	var emails []string
	for env, err := range repo.Events(ctx, "m1", 0) {
		if err != nil {
			t.Fatal(err)
		}
		emails = append(emails, env.Event.(joined).Email)
	}
	if len(emails) != 2 || emails[0] != runtime.ForgottenString || emails[1] != "new@example.com" {
		t.Errorf("events after a new key = %q", emails)
	}
}

func TestOpenRecordRefusesForgery(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	repo := newMembers(store, 0)
	if _, err := repo.Append(ctx, "m1", runtime.NoStream, joined{User: "ada", Email: secret}); err != nil {
		t.Fatal(err)
	}
	var rec runtime.Record
	for r, err := range store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		rec = r
	}
	good, err := runtime.OpenRecord(ctx, store, rec)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := unmarshalJoined(good.Data); err != nil || e.Email != secret {
		t.Fatalf("opened = %+v, %v", e, err)
	}
	// Unopened, the decoder refuses the sealed value.
	if _, err := unmarshalJoined(rec.Data); !errors.Is(err, wire.ErrSealed) {
		t.Errorf("decoding an unopened record: %v, want wire.ErrSealed", err)
	}
	for _, tc := range []struct {
		name string
		edit func([]byte)
	}{
		{"ciphertext", func(b []byte) { b[len(b)-1] ^= 1 }},
		{"field key", func(b []byte) { b[bytes.Index(b, []byte("Email"))] = 'e' }},
	} {
		bad := rec
		bad.Data = bytes.Clone(rec.Data)
		tc.edit(bad.Data)
		var de *runtime.DecodeError
		if _, err := runtime.OpenRecord(ctx, store, bad); !errors.Is(err, runtime.ErrCorrupt) || !errors.As(err, &de) || de.Version != 1 {
			t.Errorf("%s changed: %v, want a *DecodeError matching ErrCorrupt", tc.name, err)
		}
	}
	if _, err := runtime.OpenRecord(ctx, nil, rec); !errors.Is(err, runtime.ErrNoKeyStore) {
		t.Errorf("OpenRecord without keys: %v", err)
	}
}

// plainMemberTable is memberTable without the pii tag, for the benchmark.
func plainMemberTable() *registry.Events[member, memberEvent] {
	marshal := func(e joined) ([]byte, error) {
		b := wire.AppendMapHeader(nil, 2)
		b = wire.AppendString(wire.AppendString(b, "User"), e.User)
		return wire.AppendString(wire.AppendString(b, "Email"), e.Email), nil
	}
	return registry.NewEvents("Member", memberEvent.isMemberEvent,
		registry.Event[memberEvent]("Joined", 1, (*member).applyJoined, marshal, unmarshalJoined))
}

// BenchmarkShred compares appending one event and loading its stream on
// the memory store with the e-mail sealed (pii) and in the clear.
func BenchmarkShred(b *testing.B) {
	for _, tc := range []struct {
		name  string
		table func() *registry.Events[member, memberEvent]
	}{{"plain", plainMemberTable}, {"sealed", memberTable}} {
		b.Run(tc.name+"/append", func(b *testing.B) {
			repo := runtime.NewRepository(memory.New(), &runtime.Aggregate[member, memberEvent, runtime.NoCommand]{Type: "Member", Events: tc.table()})
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				if _, err := repo.Append(ctx, "m", runtime.AnyVersion, joined{User: "ada", Email: secret}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/load10", func(b *testing.B) {
			repo := runtime.NewRepository(memory.New(), &runtime.Aggregate[member, memberEvent, runtime.NoCommand]{Type: "Member", Events: tc.table()})
			ctx := context.Background()
			for range 10 {
				if _, err := repo.Append(ctx, "m", runtime.AnyVersion, joined{User: "ada", Email: secret}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, _, err := repo.Load(ctx, "m"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOpenRecordBadBytes truncates a sealed record at every length and
// flips every bit of it: opening never panics, and never yields an e-mail
// other than the original, the placeholder or an error.
func TestOpenRecordBadBytes(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	if _, err := newMembers(store, 0).Append(ctx, "m1", runtime.NoStream, joined{User: "ada", Email: secret}); err != nil {
		t.Fatal(err)
	}
	var rec runtime.Record
	for r, err := range store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		rec = r
	}
	check := func(what string, data []byte) {
		bad := rec
		bad.Data = data
		opened, err := runtime.OpenRecord(ctx, store, bad)
		if err != nil {
			return
		}
		if _, _, ok, _ := runtime.ReadSealedSubject(opened.Data); ok {
			t.Errorf("%s: an opened record still starts with a sealed value", what)
		}
		if e, err := unmarshalJoined(opened.Data); err == nil && e.Email != secret && e.Email != runtime.ForgottenString && e.Email != "" {
			t.Errorf("%s: opened to e-mail %q", what, e.Email)
		}
	}
	for n := range len(rec.Data) {
		check("truncated", rec.Data[:n:n])
	}
	for i := range len(rec.Data) {
		for bit := range 8 {
			data := bytes.Clone(rec.Data)
			data[i] ^= 1 << bit
			check("flipped", data)
		}
	}
}
