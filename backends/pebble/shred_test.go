package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// A small aggregate with a field tagged pii, its codec written as cqrsgen
// generates it (registry.SealedEvent, Sealer.String, wire.ReadOpenedString).

type person struct{ Email string }

type personEvent interface{ isPersonEvent() int }

type registered struct{ User, Email string }

func (registered) isPersonEvent() int { return 0 }

func (p *person) applyRegistered(e registered) { p.Email = e.Email }

func marshalRegistered(e registered, s *runtime.Sealer) ([]byte, error) {
	b := wire.AppendMapHeader(nil, 2)
	b = wire.AppendString(wire.AppendString(b, "User"), e.User)
	return s.String(wire.AppendString(b, "Email"), "Email", e.User, e.Email)
}

func unmarshalRegistered(data []byte) (e registered, err error) {
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

func people(s runtime.Store) *runtime.Repository[person, personEvent, runtime.NoCommand] {
	return runtime.NewRepository(s, &runtime.Aggregate[person, personEvent, runtime.NoCommand]{
		Type: "Person", StateSchema: "person-v1", SnapshotEvery: 1,
		Events: registry.NewEvents("Person", personEvent.isPersonEvent,
			registry.SealedEvent[personEvent]("Registered", 1, (*person).applyRegistered, marshalRegistered, unmarshalRegistered)),
		EncodeState: func(p *person) ([]byte, error) { return wire.AppendString(nil, p.Email), nil },
		DecodeState: func(b []byte, p *person) (err error) { p.Email, _, err = wire.ReadString(b); return err },
	})
}

// filesHolding returns the files under dir that contain any of needles.
func filesHolding(t testing.TB, dir string, needles map[string][]byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // an obsolete file Pebble deleted meanwhile
		}
		if err != nil {
			return err
		}
		for what, n := range needles {
			if bytes.Contains(data, n) {
				hits = append(hits, fmt.Sprintf("%s holds %s", path, what))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// keyFileKeys returns the data key of every key file under dir, by path.
func keyFileKeys(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	paths, _ := filepath.Glob(filepath.Join(dir, keysDir, "*"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := decodeKeyFile(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[p] = append(f.key.ID[:], f.key.Key[:]...)
	}
	return out
}

// TestShredLeavesNoTrace proves the Pebble store's crypto-shredding claim:
// a subject's personal data never reaches a file of the store in
// plaintext (events, snapshots, WAL and sstables included, across flushes
// and compactions), and once ForgetSubject returns no file holds its key
// or the keys of its streams' snapshots. No purge step is needed.
func TestShredLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, WithMemTableSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	repo := people(s)
	secret := "ada-lovelace-7f3a9c@example.com"
	other := "bob-babbage-41d2e8@example.com"
	// Enough events to flush memtables and recycle WAL files, with
	// snapshots (holding the plaintext state) saved after every event.
	for i := range 2000 {
		id := fmt.Sprint("p", i%50)
		user, email := "ada", secret
		if i%2 == 1 {
			user, email = "bob", other
		}
		if _, err := repo.Append(ctx, id, runtime.AnyVersion, registered{User: user, Email: email}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	plain := map[string][]byte{"ada's email": []byte(secret), "bob's email": []byte(other)}
	if hits := filesHolding(t, dir, plain); len(hits) > 0 {
		t.Fatalf("plaintext personal data in the store's files:\n%v", hits)
	}
	if st, _, _ := repo.Load(ctx, "p0"); st.Email != secret {
		t.Fatalf("Load before forgetting = %q", st.Email)
	}

	before := keyFileKeys(t, dir)
	res, err := lifecycle.ForgetSubject(ctx, s, "ada")
	if err != nil || len(res.Streams) != 25 || res.Snapshots != 25 {
		t.Fatalf("ForgetSubject = %d streams, %d snapshots, %v", len(res.Streams), res.Snapshots, err)
	}
	after := keyFileKeys(t, dir)
	destroyed := map[string][]byte{}
	for p, k := range before {
		if _, ok := after[p]; !ok {
			destroyed[filepath.Base(p)] = k
		}
	}
	// ada's key and the snapshot keys of her 25 streams; bob's and his
	// streams' stay.
	if len(destroyed) != 26 || len(after) != 26 {
		t.Fatalf("ForgetSubject removed %d key files and kept %d; want 26 and 26 (bob's)", len(destroyed), len(after))
	}
	check := func(when string) {
		t.Helper()
		needles := map[string][]byte{"ada's email": []byte(secret)}
		for name, k := range destroyed {
			needles["destroyed key "+name] = k
			needles["destroyed key bytes "+name] = k[8:]
		}
		if hits := filesHolding(t, dir, needles); len(hits) > 0 {
			t.Fatalf("%s: %d traces of the forgotten subject:\n%v", when, len(hits), hits)
		}
	}
	check("after ForgetSubject")
	state, _, err := repo.Load(ctx, "p0")
	if err != nil || state.Email != runtime.ForgottenString {
		t.Fatalf("Load after forgetting = %+v, %v", state, err)
	}
	if state, _, err := repo.Load(ctx, "p1"); err != nil || state.Email != other {
		t.Fatalf("bob's stream after forgetting ada = %+v, %v", state, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after Close")
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for env, err := range people(s).Events(ctx, "p0", 0) {
		if err != nil {
			t.Fatal(err)
		}
		if e := env.Event.(registered); e.Email != runtime.ForgottenString {
			t.Fatalf("event after reopening = %+v", e)
		}
	}
	check("after reopening")
}
