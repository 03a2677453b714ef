package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

const (
	childSchemaEnv = "CQRSGEN_PG_TEST_CHILD_SCHEMA"
	childNameEnv   = "CQRSGEN_PG_TEST_CHILD_NAME"
	childAppends   = 150
	childStreams   = 3
	childKeyEvery  = 5 // every 5th append carries a key both processes use
)

// TestTwoProcesses runs two copies of the test binary appending to the same
// streams of one schema at once, retrying on conflicts, every 5th append
// under an idempotency key that both processes use. Afterwards the log
// must hold exactly the appends the processes were told succeeded, with
// gap-free positions and versions, and each shared key must have been won
// by exactly one process.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	s := openIn(t, schema) // creates the schema before the children race
	names := []string{"p1", "p2"}
	cmds := make([]*exec.Cmd, len(names))
	outs := make([]*bytes.Buffer, len(names))
	for i, name := range names {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcessesChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), pgtest.EnvDSN+"="+pgtest.DSN(), childSchemaEnv+"="+schema, childNameEnv+"="+name)
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	acked := map[string]bool{} // payloads whose append succeeded
	keyWinners := map[string]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %s: %v\n%s", names[i], err, outs[i])
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			kind, payload, ok := strings.Cut(sc.Text(), " ")
			switch {
			case ok && kind == "ok":
				if acked[payload] {
					t.Errorf("payload %s acknowledged twice", payload)
				}
				acked[payload] = true
				if _, key, keyed := strings.Cut(payload, "/"); keyed {
					keyWinners[key]++
				}
			case ok && kind == "dup":
				keyWinners[payload] += 0
			}
		}
	}
	// Each shared key is won once and refused once.
	if want := len(names)*childAppends - childAppends/childKeyEvery; len(acked) != want {
		t.Fatalf("%d appends acknowledged, want %d; children's output:\n%s\n%s", len(acked), want, outs[0], outs[1])
	}
	for key, n := range keyWinners {
		if n != 1 {
			t.Errorf("shared key %s was won by %d appends, want exactly 1", key, n)
		}
	}
	if len(keyWinners) != childAppends/childKeyEvery {
		t.Errorf("%d shared keys seen, want %d", len(keyWinners), childAppends/childKeyEvery)
	}
	versions := map[string]uint64{}
	var pos uint64
	seen := map[string]bool{}
	for r, err := range s.ReadAll(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		pos++
		if r.Position != pos {
			t.Fatalf("position %d, want %d", r.Position, pos)
		}
		if r.Version != versions[r.Stream.ID]+1 {
			t.Fatalf("stream %s: version %d after %d", r.Stream, r.Version, versions[r.Stream.ID])
		}
		versions[r.Stream.ID] = r.Version
		p := string(r.Data)
		if seen[p] {
			t.Errorf("event %s stored twice", p)
		}
		seen[p] = true
		if !acked[p] {
			t.Errorf("event %s stored but its append was not acknowledged", p)
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("%d events stored, %d acknowledged", len(seen), len(acked))
	}
	for id, v := range versions {
		got, err := s.StreamVersion(t.Context(), runtime.StreamID{Type: "T", ID: id})
		if err != nil || got != v {
			t.Errorf("StreamVersion(%s) = %d, %v; read %d events", id, got, err, v)
		}
	}
}

// TestTwoProcessesChild is the body of one child of TestTwoProcesses; run
// directly it does nothing. It prints "ok <payload>" for every append that
// succeeded and "dup <key>" for every shared key the other process won.
func TestTwoProcessesChild(t *testing.T) {
	schema, name := os.Getenv(childSchemaEnv), os.Getenv(childNameEnv)
	if schema == "" {
		return
	}
	s, err := Open(context.Background(), pgtest.DSN(), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range childAppends {
		st := runtime.StreamID{Type: "T", ID: fmt.Sprint(i % childStreams)}
		payload, key := fmt.Sprintf("%s-%d", name, i), ""
		if i%childKeyEvery == 0 {
			key = fmt.Sprintf("k%d", i)
			payload += "/" + key
		}
		for {
			v, err := s.StreamVersion(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: v, IdempotencyKey: key,
				Events: []runtime.EventData{{Name: "E", Data: []byte(payload)}}})
			var dup *runtime.DuplicateError
			switch {
			case err == nil:
				fmt.Printf("ok %s\n", payload)
			case errors.As(err, &dup):
				fmt.Printf("dup %s\n", key)
			case errors.Is(err, runtime.ErrConflict):
				continue
			default:
				t.Fatal(err)
			}
			break
		}
	}
}
