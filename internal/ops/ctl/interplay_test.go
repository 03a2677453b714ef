package ctl

import (
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
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
			ret := s.(runtime.Retention)
			truncate := func(through uint64) {
				t.Helper()
				if _, err := ret.TruncateLog(ctx, through); err != nil {
					t.Fatalf("TruncateLog(%d): %v", through, err)
				}
			}
			truncate(1) // a1
			if _, err := runtime.DeleteStream(ctx, s, a, runtime.HardDelete); err != nil {
				t.Fatal(err)
			}
			if _, err := runtime.DeleteStream(ctx, s, c, runtime.SoftDelete); err != nil { // tombstone at 9
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
