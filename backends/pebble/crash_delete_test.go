package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// deleteChildEnv makes the test binary a child that hard-deletes the
// streams of the store in the named directory (see deleteChild).
const deleteChildEnv = "CQRSGEN_PEBBLE_DELETE_CHILD"

const (
	crashStreams         = 12
	crashEventsPerStream = 400
)

func crashStream(i int) runtime.StreamID {
	return runtime.StreamID{Type: "Doomed", ID: fmt.Sprint(i)}
}

// populateForDelete writes crashStreams streams of crashEventsPerStream
// events (interleaved in batches, so each stream's positions come in
// runs), each with a snapshot and two idempotency keys, and closes the
// store.
func populateForDelete(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(dir, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	for batch := range crashEventsPerStream / 50 {
		for i := range crashStreams {
			events := make([]runtime.EventData, 50)
			for j := range events {
				events[j] = runtime.EventData{Name: "E", Data: fmt.Appendf(nil, "%d/%d/%d %s", i, batch, j, strings.Repeat("x", 200))}
			}
			req := runtime.AppendRequest{Stream: crashStream(i), Expected: runtime.AnyVersion, Events: events}
			if batch < 2 {
				req.IdempotencyKey = fmt.Sprintf("key-%d-%d", i, batch)
			}
			if _, err := s.Append(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range crashStreams {
		if err := s.SaveSnapshot(ctx, runtime.Snapshot{Stream: crashStream(i), Version: 100, Schema: "s", Data: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// deleteChild hard-deletes the streams one by one, while a goroutine
// appends to a stream of its own, printing "begin i" before and
// "deleted i" after each delete (unbuffered, so a SIGKILL loses no
// acknowledged line).
func deleteChild(dir string) int {
	ctx := context.Background()
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	go func() {
		live := runtime.StreamID{Type: "Live", ID: "1"}
		for {
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: live, Expected: runtime.AnyVersion,
				Events: []runtime.EventData{{Name: "E", Data: []byte("live")}}}); err != nil {
				return
			}
		}
	}()
	for i := range crashStreams {
		_, _ = fmt.Fprintf(os.Stdout, "begin %d\n", i)
		if _, err := lifecycle.DeleteStream(ctx, s, crashStream(i), runtime.HardDelete); err != nil {
			fmt.Fprintln(os.Stderr, "child delete:", err)
			return 3
		}
		_, _ = fmt.Fprintf(os.Stdout, "deleted %d\n", i)
	}
	select {} // wait for the kill
}

// TestKillDuringHardDelete SIGKILLs a child process in the middle of hard
// deletes (during the commit or the compaction after it), 10 rounds. After
// each, every stream is either whole (all its events, its snapshot and its
// keys, no tombstone) or gone (its tombstone only: no event, snapshot or
// key left), every delete the child acknowledged is gone, and the store
// verifies clean.
func TestKillDuringHardDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 10 child processes")
	}
	rng := rand.New(rand.NewPCG(3, uint64(os.Getpid())))
	kinds := map[string]int{}
	for round := range 10 {
		dir := t.TempDir()
		populateForDelete(t, dir)
		cmd, sc := startChild(t, deleteChildEnv+"="+dir)
		target := rng.IntN(crashStreams)
		acked := map[int]bool{}
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				t.Fatalf("bad child line %q", sc.Text())
			}
			i, _ := strconv.Atoi(f[1])
			if f[0] == "deleted" {
				acked[i] = true
			}
			if f[0] == "begin" && i == target {
				// Land anywhere in the delete: before, in or after its
				// commit, or in its compaction.
				if round%3 != 0 {
					time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
				}
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "deleted" {
				i, _ := strconv.Atoi(f[1])
				acked[i] = true
			}
		}
		_ = cmd.Wait()
		gone := checkWholeOrGone(t, dir, acked)
		kinds[fmt.Sprint(gone-len(acked))]++
		t.Logf("round %d: killed in the delete of stream %d; %d deletes acknowledged, %d streams gone", round, target, len(acked), gone)
	}
	t.Logf("rounds by deletes found done beyond those acknowledged: %v", kinds)
}

// checkWholeOrGone reopens the store in dir and checks each stream is
// whole or gone, acked ones gone; it returns how many are gone.
func checkWholeOrGone(t *testing.T, dir string, acked map[int]bool) int {
	t.Helper()
	ctx := context.Background()
	s, err := Open(dir, WithLogger(quiet))
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	gone := 0
	for i := range crashStreams {
		st := crashStream(i)
		var recs []runtime.Record
		for rec, err := range s.ReadStream(ctx, st, 0) {
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		_, snapErr := s.LoadSnapshot(ctx, st)
		_, keyErr := s.LoadIdempotency(ctx, fmt.Sprintf("key-%d-0", i))
		_, keyErr2 := s.LoadIdempotency(ctx, fmt.Sprintf("key-%d-1", i))
		switch {
		case len(recs) == 1 && runtime.IsTombstone(recs[0]):
			gone++
			tomb, err := runtime.TombstoneOf(recs[0])
			if err != nil || tomb.Mode != runtime.HardDelete || tomb.Removed != crashEventsPerStream || tomb.Version != crashEventsPerStream+1 {
				t.Errorf("stream %d: tombstone %+v, %v", i, tomb, err)
			}
			if !errors.Is(snapErr, runtime.ErrNotFound) || !errors.Is(keyErr, runtime.ErrNotFound) || !errors.Is(keyErr2, runtime.ErrNotFound) {
				t.Errorf("stream %d is deleted but keeps its snapshot (%v) or keys (%v, %v)", i, snapErr, keyErr, keyErr2)
			}
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "E"}}}); !errors.Is(err, runtime.ErrStreamDeleted) {
				t.Errorf("append to deleted stream %d after the crash: %v", i, err)
			}
		case len(recs) == crashEventsPerStream:
			if acked[i] {
				t.Errorf("the child acknowledged the delete of stream %d, and it is whole after the crash", i)
			}
			for k, rec := range recs {
				if rec.Version != uint64(k+1) || runtime.IsTombstone(rec) {
					t.Fatalf("stream %d: record %d is version %d %q", i, k, rec.Version, rec.Name)
				}
			}
			if snapErr != nil || keyErr != nil || keyErr2 != nil {
				t.Errorf("stream %d is whole but lost its snapshot (%v) or keys (%v, %v)", i, snapErr, keyErr, keyErr2)
			}
		default:
			t.Errorf("stream %d is neither whole nor gone: %d records", i, len(recs))
		}
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify after the crash: %s", p)
	}
	return gone
}
