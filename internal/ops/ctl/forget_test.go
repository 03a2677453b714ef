package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

const (
	adaEmail = "ada-lovelace-7f3a9c@example.com"
	bobEmail = "bob-babbage-41d2e8@example.com"
)

// fillSealed writes events whose Email field is sealed as generated code
// seals a field tagged pii: ada in streams p1 and p2, bob in p3; p1 has a
// snapshot.
func fillSealed(t *testing.T, b backend) {
	t.Helper()
	ctx := context.Background()
	s := b.open(t)
	defer s.Close()
	keys, ok := runtime.KeysOf(s)
	if !ok {
		t.Fatal("store without keys")
	}
	for _, e := range []struct{ id, user, email string }{{"p1", "ada", adaEmail}, {"p2", "ada", adaEmail}, {"p3", "bob", bobEmail}} {
		st := runtime.StreamID{Type: "Person", ID: e.id}
		body := wire.AppendMapHeader(nil, 2)
		body = wire.AppendString(wire.AppendString(body, "User"), e.user)
		body, err := runtime.NewSealer(ctx, keys, st).String(wire.AppendString(body, "Email"), "Email", e.user, e.email)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream,
			Events: []runtime.EventData{{Name: "Registered", Schema: 1, Time: at, Data: body}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: runtime.StreamID{Type: "Person", ID: "p1"}, Version: 1, Schema: "s", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// adaKey returns whether ada still has a key.
func adaKey(t *testing.T, b backend) bool {
	t.Helper()
	s := b.open(t)
	defer s.Close()
	keys, _ := runtime.KeysOf(s)
	_, err := keys.LoadSubjectKey(context.Background(), "ada")
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// noPlaintext fails when an export of b (JSON Lines, and every column of
// every row of a Parquet export) holds an e-mail in the clear.
func noPlaintext(t *testing.T, b backend, when string) {
	t.Helper()
	r := b.run(t, "export")
	if r.code != ExitOK {
		t.Fatalf("%s: export: %s", when, r.stderr)
	}
	for _, secret := range []string{adaEmail, bobEmail} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("%s: the JSON Lines export holds %s", when, secret)
		}
	}
	if !strings.Contains(r.stdout, `"Email":{"sealed":"ada"}`) {
		t.Errorf("%s: the export does not show ada's sealed field as its placeholder:\n%s", when, r.stdout)
	}
	file := filepath.Join(t.TempDir(), "log.parquet")
	if r := b.run(t, "export", "-format", "parquet", "-o", file); r.code != ExitOK {
		t.Fatalf("%s: parquet export: %s", when, r.stderr)
	}
	rows, err := parquet.ReadFile[parquetEvent](file)
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(rows) // every column, raw bodies included
	if len(rows) != 3 || bytes.Contains(dump, []byte(adaEmail)) || bytes.Contains(dump, []byte(bobEmail)) {
		t.Errorf("%s: the Parquet export (%d rows) holds an e-mail in the clear", when, len(rows))
	}
	raw, _ := os.ReadFile(file)
	if bytes.Contains(raw, []byte(adaEmail)) {
		t.Errorf("%s: the Parquet file holds ada's e-mail", when)
	}
}

func TestForgetSubject(t *testing.T) {
	for _, b := range []backend{pebbleBackend(t), postgresBackend(t)} {
		t.Run(b.name, func(t *testing.T) {
			fillSealed(t, b)
			noPlaintext(t, b, "before forgetting")

			// Without -yes: a report, exit 1, nothing changed.
			r := b.run(t, "forget-subject", "ada")
			var out forgetJSON
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != ExitFailed || !strings.Contains(r.stderr, "pass -yes") {
				t.Fatalf("unconfirmed: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if !out.Found || out.Forgotten || len(out.Streams) != 2 || out.Snapshots != 1 || !adaKey(t, b) {
				t.Fatalf("unconfirmed run: %+v, key kept %v", out, adaKey(t, b))
			}
			// -dry-run: the same report, exit 0, nothing changed.
			if r := b.run(t, "forget-subject", "-dry-run", "ada"); r.code != ExitOK || !strings.Contains(r.stdout, `"forgotten": false`) || !adaKey(t, b) {
				t.Fatalf("dry run: exit %d, %q, key kept %v", r.code, r.stdout, adaKey(t, b))
			}
			for _, bad := range [][]string{{"forget-subject"}, {"forget-subject", "-yes", "-dry-run", "ada"}, {"forget-subject", "a", "b"}, {"forget-subject", "\x00x"}} {
				if r := b.run(t, bad...); r.code != ExitUsage {
					t.Errorf("%q: exit %d, want %d (%s)", bad, r.code, ExitUsage, r.stderr)
				}
			}

			args := []string{"forget-subject", "-yes", "ada"}
			if b.name == "postgres" {
				args = []string{"forget-subject", "-yes", "-purge", "ada"}
			}
			r = b.run(t, args...)
			out = forgetJSON{}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != ExitOK {
				t.Fatalf("forget: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if !out.Forgotten || out.Snapshots != 1 || out.Purged != (b.name == "postgres") || adaKey(t, b) {
				t.Fatalf("forget: %+v, key kept %v", out, adaKey(t, b))
			}
			noPlaintext(t, b, "after forgetting")

			// Loads see the placeholder; bob is untouched.
			s := b.open(t)
			keys, _ := runtime.KeysOf(s)
			var got []string
			for rec, err := range s.ReadAll(context.Background(), 0) {
				if err == nil {
					rec, err = runtime.OpenRecord(context.Background(), keys, rec)
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(must(msgpackToJSON(rec.Data))))
			}
			s.Close()
			want := fmt.Sprintf(`[{"User":"ada","Email":%q} {"User":"ada","Email":%q} {"User":"bob","Email":%q}]`, runtime.ForgottenString, runtime.ForgottenString, bobEmail)
			if fmt.Sprint(got) != want {
				t.Errorf("opened after forgetting = %s\nwant %s", got, want)
			}
			// Again: nothing to forget, not an error.
			if r := b.run(t, "forget-subject", "-yes", "ada"); r.code != ExitOK || !strings.Contains(r.stderr, "no key") {
				t.Errorf("second forget: exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}

func must(v json.RawMessage, err error) json.RawMessage {
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", err.Error()))
	}
	return v
}
