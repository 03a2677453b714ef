package storetest_test

import (
	"context"
	"errors"
	"iter"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
)

// The suite must bite: each broken store below breaks one rule, and the
// subtests for that rule must fail while unrelated ones pass. A failing
// suite cannot run under the parent's *testing.T without failing it, so
// each broken store runs in a child process (this test binary again,
// selecting TestBrokenStoreHelper through an environment variable).

const brokenEnv = "STORETEST_BROKEN_STORE"

// brokenStores maps a name to a factory for a store that breaks one rule.
var brokenStores = map[string]func() runtime.Store{
	"ignoresExpected": func() runtime.Store { return ignoresExpected{memory.New()} },
	"halfBatch":       func() runtime.Store { return halfBatch{memory.New()} },
	"joinsKeys":       func() runtime.Store { return joinsKeys{memory.New()} },
	"dropsKey":        func() runtime.Store { return dropsKey{memory.New()} },
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	cases := []struct {
		store    string
		wantFail []string
		wantPass []string
	}{
		{
			store: "ignoresExpected",
			wantFail: []string{
				"Append/ExpectedVersion/Exact", "Append/ExpectedVersion/NoStream",
				"Append/ExpectedVersion/StreamExists", "Append/Atomic/Conflict", "Concurrency/OneStream",
			},
			wantPass: []string{"Append/ExpectedVersion/AnyVersion", "Snapshots", "Checkpoints", "Keys/Streams"},
		},
		{
			store:    "halfBatch",
			wantFail: []string{"Append/Atomic/Conflict", "Append/Atomic/LastEventTooLarge", "Append/Atomic/DuplicateKey"},
			wantPass: []string{"Append/ExpectedVersion/AnyVersion", "Append/ReadBack", "Snapshots", "Checkpoints", "Keys/Streams"},
		},
		{
			store:    "joinsKeys",
			wantFail: []string{"Keys/Streams", "Keys/Snapshots"},
			wantPass: []string{"Append/ExpectedVersion/Exact", "Checkpoints", "Keys/Checkpoints", "Concurrency/OneStream"},
		},
		{
			store:    "dropsKey",
			wantFail: []string{"Idempotency/Append", "Idempotency/Concurrent", "Idempotency/SavedKeyBlocksAppend", "Append/Atomic/DuplicateKey"},
			wantPass: []string{"Idempotency/SaveLoad", "Idempotency/Duplicate", "Append/ExpectedVersion/Exact", "Snapshots"},
		},
	}
	for _, c := range cases {
		t.Run(c.store, func(t *testing.T) {
			t.Parallel()
			checkBrokenSuite(t, c.store, c.wantFail, c.wantPass)
		})
	}
}

// TestBrokenStoreHelper runs the suite against the broken store named by
// the environment; it only runs as TestSuiteCatchesBrokenStores's child.
func TestBrokenStoreHelper(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("child process of TestSuiteCatchesBrokenStores")
	}
	open, ok := brokenStores[name]
	if !ok {
		t.Fatalf("unknown broken store %q", name)
	}
	storetest.Run(t, storetest.Factory{Open: func(*testing.T) runtime.Store { return open() }})
}

// ignoresExpected appends whatever the stream's version.
type ignoresExpected struct{ runtime.Store }

func (s ignoresExpected) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	if storekit.ValidateExpected(req.Expected) == nil {
		req.Expected = runtime.AnyVersion
	}
	return s.Store.Append(ctx, req)
}

// halfBatch writes the first half of a batch that fails.
type halfBatch struct{ runtime.Store }

func (s halfBatch) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	res, err := s.Store.Append(ctx, req)
	if err != nil && len(req.Events) > 1 {
		half := req
		half.Expected = runtime.AnyVersion
		half.IdempotencyKey = ""
		half.Events = req.Events[:len(req.Events)/2]
		_, _ = s.Store.Append(ctx, half)
	}
	return res, err
}

// dropsKey ignores AppendRequest.IdempotencyKey.
type dropsKey struct{ runtime.Store }

func (s dropsKey) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	req.IdempotencyKey = ""
	return s.Store.Append(ctx, req)
}

// joinsKeys keys streams by Type + "/" + ID, the classic encoding bug:
// ("a", "b/c") and ("a/b", "c") become one stream.
type joinsKeys struct{ runtime.Store }

func join(st runtime.StreamID) runtime.StreamID {
	return runtime.StreamID{Type: "s", ID: st.Type + "/" + st.ID}
}

func split(st runtime.StreamID) runtime.StreamID {
	typ, id, _ := strings.Cut(st.ID, "/")
	return runtime.StreamID{Type: typ, ID: id}
}

func (s joinsKeys) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	orig := req.Stream
	req.Stream = join(req.Stream)
	res, err := s.Store.Append(ctx, req)
	var ce *runtime.ConflictError
	if errors.As(err, &ce) {
		ce.Stream = orig
	}
	return res, err
}

func splitAll(seq iter.Seq2[runtime.Record, error]) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		for r, err := range seq {
			if err == nil {
				r.Stream = split(r.Stream)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

func (s joinsKeys) ReadStream(ctx context.Context, st runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return splitAll(s.Store.ReadStream(ctx, join(st), after))
}

func (s joinsKeys) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return splitAll(s.Store.ReadAll(ctx, after))
}

func (s joinsKeys) StreamVersion(ctx context.Context, st runtime.StreamID) (uint64, error) {
	return s.Store.StreamVersion(ctx, join(st))
}

func (s joinsKeys) SaveSnapshot(ctx context.Context, snap runtime.Snapshot) error {
	snap.Stream = join(snap.Stream)
	return s.Store.SaveSnapshot(ctx, snap)
}

func (s joinsKeys) LoadSnapshot(ctx context.Context, st runtime.StreamID) (runtime.Snapshot, error) {
	snap, err := s.Store.LoadSnapshot(ctx, join(st))
	snap.Stream = split(snap.Stream)
	return snap, err
}

// checkBrokenSuite runs the suite against the broken store named store in
// a child test process and checks that exactly the subtests of wantFail
// fail and those of wantPass pass.
func checkBrokenSuite(t *testing.T, store string, wantFail, wantPass []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreHelper$", "-test.v", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), brokenEnv+"="+store)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("suite against %s: want a failing exit, got %v\n%s", store, err, out)
	}
	for _, name := range wantFail {
		if !strings.Contains(string(out), "--- FAIL: TestBrokenStoreHelper/"+name+" ") {
			t.Errorf("suite against %s: subtest %s did not fail", store, name)
		}
	}
	for _, name := range wantPass {
		if !strings.Contains(string(out), "--- PASS: TestBrokenStoreHelper/"+name+" ") {
			t.Errorf("suite against %s: subtest %s did not pass (the breakage should be specific)", store, name)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
