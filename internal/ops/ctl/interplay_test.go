package ctl

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/wire"
)

// TestVerifyAfterLifecycle: cqrsctl verify finds nothing wrong in a store
// where hard and soft deletes and truncations overlap (a hard delete of a
// partly truncated stream, truncations over its hole and over tombstones).
func TestVerifyAfterLifecycle(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			// An empty MessagePack map: verify decodes bodies.
			event := []runtime.EventData{{Name: "Noted", Schema: 1, Data: wire.AppendMapHeader(nil, 0)}}
			s := b.open(t)
			a, c, k := runtime.StreamID{Type: "T", ID: "a"}, runtime.StreamID{Type: "T", ID: "c"}, runtime.StreamID{Type: "T", ID: "k"}
			for _, st := range []runtime.StreamID{a, c, a, k, c, a, k} {
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: event}); err != nil {
					t.Fatal(err)
				}
			}
			ret := s.(lifecycle.Retention)
			truncate := func(through uint64) {
				t.Helper()
				if _, err := ret.TruncateLog(ctx, through); err != nil {
					t.Fatalf("TruncateLog(%d): %v", through, err)
				}
			}
			truncate(1) // a1
			if _, err := lifecycle.DeleteStream(ctx, s, a, runtime.HardDelete); err != nil {
				t.Fatal(err)
			}
			if _, err := lifecycle.DeleteStream(ctx, s, c, runtime.SoftDelete); err != nil { // tombstone at 9
				t.Fatal(err)
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: k, Expected: runtime.AnyVersion, Events: event}); err != nil {
				t.Fatal(err)
			}
			truncate(4) // over a's hole
			truncate(9) // over both tombstones
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := b.run(t, "verify")
			if r.code != ExitOK || strings.Contains(r.stderr, "problem") {
				t.Errorf("verify: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestArchiveKeepsSealed: archiving and truncating sealed events keeps them
// sealed in the Parquet archive, and forgetting the subject afterwards
// leaves the archive with nothing of the subject readable.
func TestArchiveKeepsSealed(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pebbleBackend, postgresBackend} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			fillSealed(t, b) // ada at positions 1 and 2, bob at 3
			file := filepath.Join(t.TempDir(), "old.parquet")
			r := b.run(t, "archive", "-before", "3", "-to", file, "-yes", "-allow-uncovered")
			if out := archiveOut(t, r); r.code != ExitOK || !out.Truncated || out.Events != 2 {
				t.Fatalf("archive: exit %d, %+v, %s", r.code, out, r.stderr)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(adaEmail)) {
				t.Errorf("the archive holds ada's e-mail in the clear")
			}
			if got := readParquetPositions(t, file); !slices.Equal(got, []uint64{1, 2}) {
				t.Errorf("archive holds positions %v, want [1 2]", got)
			}
			// The archived bodies are the stored, sealed ones: they open
			// with ada's key while it lives, and to the placeholder after.
			s := b.open(t)
			keys, _ := runtime.KeysOf(s)
			open := func() []string {
				t.Helper()
				f, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				events, err := importSource(f, file)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for e, err := range events {
					if err != nil {
						t.Fatal(err)
					}
					rec, err := runtime.OpenRecord(t.Context(), keys, runtime.Record{Stream: runtime.StreamID{Type: e.Stream.Type, ID: e.Stream.ID},
						Version: e.Version, Position: e.Position, Name: e.Name, Schema: e.Schema, Data: e.Raw})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, string(rec.Data))
				}
				return out
			}
			for _, body := range open() {
				if !strings.Contains(body, adaEmail) {
					t.Errorf("an archived body opens to %q, without ada's e-mail", body)
				}
			}
			if _, err := lifecycle.ForgetSubject(t.Context(), s, "ada"); err != nil {
				t.Fatal(err)
			}
			for _, body := range open() {
				if strings.Contains(body, adaEmail) || !strings.Contains(body, runtime.ForgottenString) {
					t.Errorf("after ForgetSubject an archived body opens to %q", body)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
