package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// ack is one acknowledged append as its writer saw it.
type ack struct {
	stream      runtime.StreamID
	first, last uint64 // versions
	pos1, posN  uint64
	tags        []string // event data, in order
}

// verifyLog opens nothing: it checks the records of a whole log against
// the acknowledged appends. Every acknowledged append is present exactly
// once at its versions and positions, positions are 1..n without gaps,
// versions per stream are 1..k without gaps, every tag appears once, and
// every append (identified by its tags' prefix) is whole or absent.
func verifyLog(t *testing.T, recs []runtime.Record, acks []ack) {
	t.Helper()
	byTag := map[string]runtime.Record{}
	versions := map[runtime.StreamID]uint64{}
	batches := map[string][2]int{} // batch id → (seen, size)
	for i, r := range recs {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d has position %d: gap or reorder", i, r.Position)
		}
		if r.Version != versions[r.Stream]+1 {
			t.Fatalf("%s: version %d follows %d", r.Stream, r.Version, versions[r.Stream])
		}
		versions[r.Stream] = r.Version
		tag := string(r.Data)
		if _, dup := byTag[tag]; dup {
			t.Fatalf("event %q stored twice", tag)
		}
		byTag[tag] = r
		// tag = batch/index/size
		parts := strings.Split(tag, "/")
		size, _ := strconv.Atoi(parts[2])
		b := batches[parts[0]]
		b[0]++
		b[1] = size
		batches[parts[0]] = b
	}
	for id, b := range batches {
		if b[0] != b[1] {
			t.Fatalf("append %s is partial: %d of %d events", id, b[0], b[1])
		}
	}
	for _, a := range acks {
		for i, tag := range a.tags {
			r, ok := byTag[tag]
			if !ok {
				t.Fatalf("acknowledged event %q (%s v%d) lost", tag, a.stream, a.first+uint64(i))
			}
			if r.Stream != a.stream || r.Version != a.first+uint64(i) || r.Position != a.pos1+uint64(i) {
				t.Fatalf("acknowledged event %q at %s v%d p%d, stored at %s v%d p%d",
					tag, a.stream, a.first+uint64(i), a.pos1+uint64(i), r.Stream, r.Version, r.Position)
			}
		}
	}
}

// appendLoop appends batches of 1–4 events to its own stream (exact
// expected versions) and to a shared one (AnyVersion) until stop is closed
// or an append fails, reporting each acknowledged append.
func appendLoop(s *Store, w int, prefix string, stop <-chan struct{}, report func(ack)) {
	ctx := context.Background()
	own := runtime.StreamID{Type: "W", ID: fmt.Sprint(w)}
	shared := runtime.StreamID{Type: "W", ID: "shared"}
	ver, err := s.StreamVersion(ctx, own)
	if err != nil {
		return
	}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		st, exp := own, ver
		if n%3 == 2 {
			st, exp = shared, runtime.AnyVersion
		}
		size := 1 + n%4
		id := fmt.Sprintf("%s-w%d-n%d", prefix, w, n)
		var evs []runtime.EventData
		var tags []string
		for i := range size {
			tag := fmt.Sprintf("%s/%d/%d", id, i, size)
			tags = append(tags, tag)
			evs = append(evs, runtime.EventData{Name: "E", Data: []byte(tag)})
		}
		res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: exp, Events: evs})
		if err != nil {
			return
		}
		if st == own {
			ver = res.LastVersion
		}
		report(ack{stream: st, first: res.FirstVersion, last: res.LastVersion, pos1: res.FirstPosition, posN: res.LastPosition, tags: tags})
	}
}

func readAllT(t *testing.T, s *Store) []runtime.Record {
	t.Helper()
	recs, err := collect(t, s.ReadAll(context.Background(), 0))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestCrashInProcess crashes a store on Pebble's crashable in-memory file
// system at random moments while many goroutines append, and opens the
// crash image: only synced data survives, which must include every
// acknowledged append.
func TestCrashInProcess(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, uint64(os.Getpid())))
	var acks []ack
	fs := vfs.NewCrashableMem()
	for round := range 12 {
		s, err := Open("/db", WithFS(fs), WithLogger(quiet), WithCacheSize(4<<20), WithMemTableSize(1<<20))
		if err != nil {
			t.Fatalf("round %d: open crash image: %v", round, err)
		}
		verifyLog(t, readAllT(t, s), acks)

		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		target := len(acks) + 20 + rng.IntN(400)
		reached := make(chan struct{})
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				appendLoop(s, w, fmt.Sprint("r", round), stop, func(a ack) {
					mu.Lock()
					acks = append(acks, a)
					if len(acks) == target {
						close(reached)
					}
					mu.Unlock()
				})
			}()
		}
		<-reached
		mu.Lock()
		acked := append([]ack(nil), acks...) // acknowledged before the crash
		mu.Unlock()
		crash := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
		close(stop)
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fs = crash
		// Appends acknowledged after the clone may or may not survive:
		// only those acknowledged before it are required; the others must
		// be whole or absent (verifyLog checks that for every batch).
		acks = acked
		s2, err := Open("/db", WithFS(fs), WithLogger(quiet))
		if err != nil {
			t.Fatalf("round %d: open crash image: %v", round, err)
		}
		recs := readAllT(t, s2)
		verifyLog(t, recs, acks)
		// Rebuild the list from what survived so later rounds can demand it.
		acks = survivors(recs)
		stats, err := s2.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if stats.Events != uint64(len(recs)) || stats.Head != uint64(len(recs)) {
			t.Fatalf("round %d: Stats %+v after crash, log has %d events", round, stats, len(recs))
		}
		s2.Close()
	}
}

// survivors turns a verified log back into acknowledged appends.
func survivors(recs []runtime.Record) []ack {
	var out []ack
	for _, r := range recs {
		out = append(out, ack{stream: r.Stream, first: r.Version, last: r.Version, pos1: r.Position, posN: r.Position, tags: []string{string(r.Data)}})
	}
	return out
}

const childEnv = "CQRSGEN_PEBBLE_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	if dir := os.Getenv(truncateChildEnv); dir != "" {
		os.Exit(truncateChild(dir)) // retention_kill_test.go
	}
	if dir := os.Getenv(deleteChildEnv); dir != "" {
		os.Exit(deleteChild(dir)) // crash_delete_test.go
	}
	if dir := os.Getenv(recycleChildEnv); dir != "" {
		os.Exit(recycleChild(dir)) // walclean_test.go
	}
	os.Exit(m.Run())
}

// killChild appends from many goroutines until killed, writing one line
// per acknowledged append to stdout (unbuffered, so a SIGKILL loses no
// acknowledged line).
func killChild(dir string) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendLoop(s, w, os.Getenv(childEnv+"_ROUND"), nil, func(a ack) {
				line := fmt.Sprintf("ack %s %s %d %d %s\n", a.stream.Type, a.stream.ID, a.first, a.pos1, strings.Join(a.tags, ","))
				mu.Lock()
				_, _ = os.Stdout.WriteString(line)
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	return 1
}

// TestKillRecovery runs a child process that appends from many goroutines
// to a real directory and SIGKILLs it at random moments, 20 rounds; after
// each, every append the child reported is present exactly once and the
// store opens cleanly with contiguous positions and versions.
func TestKillRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 20 child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2, uint64(os.Getpid())))
	var acks []ack
	for round := range 20 {
		cmd, sc := startChild(t, childEnv+"="+dir, fmt.Sprintf("%s_ROUND=k%d", childEnv, round))
		sc.Buffer(nil, 1<<20)
		target := 1 + rng.IntN(600)
		n := 0
		for sc.Scan() {
			a, err := parseAck(sc.Text())
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, a)
			if n++; n == 1 && round == 0 {
				// The directory is open in another process: Open must refuse.
				if _, err := Open(dir, WithLogger(quiet)); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
					t.Errorf("Open while the child holds %s: %v, want ErrLocked", dir, err)
				}
			}
			if n == target {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		// Lines written before the kill are acknowledged too.
		for sc.Scan() {
			a, err := parseAck(sc.Text())
			if err != nil {
				break // a torn last line: the kill came mid-write
			}
			acks = append(acks, a)
		}
		_ = cmd.Wait()
		s, err := Open(dir, WithLogger(quiet))
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		recs := readAllT(t, s)
		verifyLog(t, recs, acks)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d acks; log holds %d events", round, n, len(recs))
	}
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "ack" {
		return ack{}, fmt.Errorf("bad child line %q", line)
	}
	first, err1 := strconv.ParseUint(f[3], 10, 64)
	pos, err2 := strconv.ParseUint(f[4], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ack{}, err
	}
	tags := strings.Split(f[5], ",")
	return ack{stream: runtime.StreamID{Type: f[1], ID: f[2]}, first: first, last: first + uint64(len(tags)) - 1,
		pos1: pos, posN: pos + uint64(len(tags)) - 1, tags: tags}, nil
}
