package torture

import (
	"context"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestVerifierCatches proves the verifier is not a rubber stamp: each case
// builds a store that breaks one guarantee (or acknowledgements the store
// does not back) and expects the verifier to say which.
func TestVerifierCatches(t *testing.T) {
	raw := func(id string, i, n int) runtime.EventData {
		return batch(id, n)[i]
	}
	own := runtime.StreamID{Type: RawType, ID: "w0"}
	acct := runtime.StreamID{Type: AccountType, ID: "acct0"}
	exec := func(key string) runtime.EventData {
		return runtime.EventData{Name: eventName, Schema: 1, Data: []byte(execPrefix + key)}
	}
	tests := []struct {
		name  string
		setup func(ctx context.Context, s runtime.Store) error
		lines []string
		want  string // "" = must pass
	}{
		{
			name: "consistent",
			setup: func(ctx context.Context, s runtime.Store) error {
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: batch("b1", 2)}); err != nil {
					return err
				}
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{exec("x1")}, IdempotencyKey: "x1"})
				return err
			},
			lines: []string{"a T.raw w0 1 1 2 b1", "x acct0 x1 1", "h 3"},
		},
		{
			name:  "lost append",
			lines: []string{"a T.raw w0 1 1 2 b1"},
			want:  "acknowledged append b1 (2 events at T.raw/\"w0\" v1 p1) lost",
		},
		{
			name: "append acknowledged elsewhere",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: batch("b1", 1)})
				return err
			},
			lines: []string{"a T.raw w0 1 2 1 b1"},
			want:  "append b1 acknowledged as 1 events at T.raw/\"w0\" v1 p2, stored as 1 at T.raw/\"w0\" v1 p1",
		},
		{
			name: "partial batch",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: []runtime.EventData{raw("b1", 0, 2)}})
				return err
			},
			want: "batch b1 in T.raw/\"w0\" is partial: 1 of 2 events",
		},
		{
			name: "interleaved batch",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: []runtime.EventData{raw("b1", 0, 2), raw("b2", 0, 1), raw("b1", 1, 2)}})
				return err
			},
			want: "does not follow its batch",
		},
		{
			name: "duplicated event",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: []runtime.EventData{raw("b1", 0, 1), raw("b1", 0, 1)}})
				return err
			},
			want: "does not follow its batch",
		},
		{
			name: "keyed batch without its key",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: batch("kb1", 1)})
				return err
			},
			want: "key kb1 of the events ending at T.raw/\"w0\" v1",
		},
		{
			name: "command appended twice",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{exec("x1"), exec("x1")}})
				return err
			},
			want: "command with key x1 appended twice",
		},
		{
			name: "command without its key",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: acct, Events: []runtime.EventData{exec("x1")}})
				return err
			},
			want: "key x1 of the events ending at T.acct/\"acct0\" v1",
		},
		{
			name:  "lost command",
			lines: []string{"x acct0 x1 1"},
			want:  "acknowledged command x1 on acct0 (version 1) lost",
		},
		{
			name:  "key re-executed to another version",
			lines: []string{"x acct0 x1 1", "x acct0 x1 2"},
			want:  "idempotency broken",
		},
		{
			name: "checkpoint ahead of the log",
			setup: func(ctx context.Context, s runtime.Store) error {
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: batch("b1", 1)}); err != nil {
					return err
				}
				return s.SaveCheckpoint(ctx, ProjectionName, 2)
			},
			want: "projection checkpoint 2 is ahead of the durable head 1",
		},
		{
			name:  "projection handled a lost position",
			lines: []string{"h 1"},
			want:  "the projection handled position 1, but the durable head after the kill is 0",
		},
		{
			name: "foreign record",
			setup: func(ctx context.Context, s runtime.Store) error {
				_, err := s.Append(ctx, runtime.AppendRequest{Stream: own, Events: []runtime.EventData{{Name: "e", Data: []byte("junk")}}})
				return err
			},
			want: "unexpected record",
		},
		{
			name:  "unparsable line",
			lines: []string{"a T.raw w0 one 1 1 b1"},
			want:  "bad child line",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			target := Target{Backend: Pebble, Dir: t.TempDir()}
			s, err := pebble.Open(target.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				if err := tc.setup(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			v := newVerifier(target)
			var err2 error
			for _, l := range tc.lines {
				if err2 = v.line(l); err2 != nil {
					break
				}
			}
			if err2 == nil {
				_, err2 = v.verify(ctx)
			}
			switch {
			case tc.want == "" && err2 != nil:
				t.Fatalf("verify: %v", err2)
			case tc.want != "" && err2 == nil:
				t.Fatalf("verify passed; want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err2.Error(), tc.want):
				t.Fatalf("verify: %v\nwant an error containing %q", err2, tc.want)
			}
		})
	}
}

// TestVerifierSeesShrinkingLog checks the round-to-round check: a log
// that loses records a previous round verified fails.
func TestVerifierSeesShrinkingLog(t *testing.T) {
	ctx := context.Background()
	target := Target{Backend: Pebble, Dir: t.TempDir()}
	v := newVerifier(target)
	v.prev = []logEntry{{stream: runtime.StreamID{Type: RawType, ID: "w0"}, version: 1, data: "a:b0/0/1"}}
	if _, err := v.verify(ctx); err == nil || !strings.Contains(err.Error(), "the log shrank from 1 to 0 events") {
		t.Fatalf("verify of an emptied store: %v", err)
	}
}
