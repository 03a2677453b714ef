package pebble

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

const truncateChildEnv = "CQRSGEN_PEBBLE_TRUNCATE_CHILD"

// truncateChild appends batches to 50 streams in one goroutine and
// truncates the log in another, each time up to a little below the head,
// until killed; it writes "trunc P" once TruncateLog(P) has returned.
func truncateChild(dir string) int {
	s, err := Open(dir, WithLogger(quiet))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	ctx := context.Background()
	go func() {
		for i := 0; ; i++ {
			st := runtime.StreamID{Type: "T", ID: strconv.Itoa(i % 50)}
			events := make([]runtime.EventData, 100)
			for j := range events {
				events[j] = runtime.EventData{Name: "E", Schema: 1, Data: []byte(fmt.Sprintf("%d/%d", i, j))}
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: events}); err != nil {
				fmt.Fprintln(os.Stderr, "child append:", err)
				os.Exit(3)
			}
		}
	}()
	for {
		head, err := s.Head(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child head:", err)
			return 3
		}
		if head < 1000 {
			continue
		}
		through := head - 500
		if _, err := s.TruncateLog(ctx, through); err != nil {
			fmt.Fprintln(os.Stderr, "child truncate:", err)
			return 3
		}
		_, _ = os.Stdout.WriteString("trunc " + strconv.FormatUint(through, 10) + "\n")
	}
}

// TestKillDuringTruncation SIGKILLs a child process that truncates the log
// while it appends, at random moments, 8 rounds. After each, the store
// opens; it is truncated at least as far as the child was told; Verify
// finds nothing; the log runs without a gap from the mark to the head;
// and every stream reads from its first kept version on.
func TestKillDuringTruncation(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 8 child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, uint64(os.Getpid())))
	var acked uint64
	for round := range 8 {
		cmd, sc := startChild(t, truncateChildEnv+"="+dir)
		target := 1 + rng.IntN(20)
		n := 0
		read := func(line string) bool {
			p, err := strconv.ParseUint(strings.TrimPrefix(line, "trunc "), 10, 64)
			if err != nil {
				return false // a torn last line
			}
			acked = max(acked, p)
			return true
		}
		for sc.Scan() {
			if !read(sc.Text()) {
				t.Fatalf("bad child line %q", sc.Text())
			}
			if n++; n == target {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			if !read(sc.Text()) {
				break
			}
		}
		_ = cmd.Wait()
		checkTruncatedStore(t, dir, round, acked)
	}
}

func checkTruncatedStore(t *testing.T, dir string, round int, acked uint64) {
	t.Helper()
	s, err := Open(dir, WithLogger(quiet))
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
	}
	defer s.Close()
	ctx := t.Context()
	tr, err := s.Truncated(ctx)
	if err != nil || tr < acked {
		t.Fatalf("round %d: Truncated = %d, %v; the child was told %d", round, tr, err, acked)
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("round %d: Verify: %s", round, p)
	}
	recs := readAllT(t, s)
	for i, r := range recs {
		if r.Position != tr+1+uint64(i) {
			t.Fatalf("round %d: record %d at position %d, want %d", round, i, r.Position, tr+1+uint64(i))
		}
	}
	head, _ := s.Head(ctx)
	if len(recs) == 0 || recs[len(recs)-1].Position != head {
		t.Fatalf("round %d: %d records after mark %d, head %d", round, len(recs), tr, head)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Events != uint64(len(recs)) {
		t.Errorf("round %d: Stats.Events = %d, %v; %d records stored", round, st.Events, err, len(recs))
	}
	for i := range 50 {
		stream := runtime.StreamID{Type: "T", ID: strconv.Itoa(i)}
		var through uint64
		for _, err := range s.ReadStream(ctx, stream, 0) {
			if te, ok := err.(*runtime.TruncatedError); ok {
				through = te.Through
			} else if err != nil {
				t.Fatalf("round %d: ReadStream(%s, 0): %v", round, stream, err)
			}
			break
		}
		for _, err := range s.ReadStream(ctx, stream, through) {
			if err != nil {
				t.Fatalf("round %d: ReadStream(%s, after %d): %v", round, stream, through, err)
			}
		}
	}
	t.Logf("round %d: truncated through %d (child told %d), %d events kept", round, tr, acked, len(recs))
}
