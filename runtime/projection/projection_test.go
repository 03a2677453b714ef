package projection_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// The fixture is a small bank: "Opened" (Data = owner) and "Deposited"
// (Data = decimal amount) on account streams, plus "Noise" records with
// undecodable bytes that the projection must skip without seeing them.

var owners = []string{"alice", "bob", "alice", "carol"}

// appendEvents appends n events, one per append, chosen from the position
// each will get, and returns the head.
func appendEvents(t testing.TB, s runtime.Store, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		head++
		if head%7 == 0 {
			if _, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "other", ID: "noise"}, Expected: runtime.AnyVersion,
				Events: []runtime.EventData{{Name: "Noise", Data: []byte("not a number")}}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		acct := head % 4
		stream := runtime.StreamID{Type: "account", ID: fmt.Sprint("a", acct)}
		v, err := s.StreamVersion(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		ev := runtime.EventData{Name: "Deposited", Data: []byte(strconv.FormatUint(head%10+1, 10))}
		if v == 0 {
			ev = runtime.EventData{Name: "Opened", Data: []byte(owners[acct])}
		}
		if _, err := s.Append(ctx, runtime.AppendRequest{Stream: stream, Expected: v, Events: []runtime.EventData{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	return head
}

// deposit appends one deposit to an account without a version check (for
// concurrent writers).
func deposit(ctx context.Context, s runtime.Store, acct string, amount int) (runtime.AppendResult, error) {
	return s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: acct}, Expected: runtime.AnyVersion,
		Events: []runtime.EventData{{Name: "Deposited", Data: []byte(strconv.Itoa(amount))}}})
}

// model is a read model of balances by owner. It commits its state and
// position together under mu, so it can run in exactly-once mode.
type model struct {
	mu      sync.Mutex
	owners  map[string]string // account → owner
	balance map[string]int    // owner → sum of deposits
	applied map[uint64]int    // position → times applied
	pos     uint64

	// before runs before a record is applied, after once it is committed;
	// an error from either is returned by Handle. Set before running.
	before, after func(ctx context.Context, rec runtime.Record) error
}

func newModel() *model {
	m := &model{}
	m.clear()
	return m
}

func (m *model) clear() {
	m.owners, m.balance, m.applied, m.pos = map[string]string{}, map[string]int{}, map[uint64]int{}, 0
}

// handle is what generated code does: decode by name, then apply.
func (m *model) handle(ctx context.Context, rec runtime.Record) error {
	var amount int
	switch rec.Name {
	case "Opened":
	case "Deposited":
		a, err := strconv.Atoi(string(rec.Data))
		if err != nil {
			return &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "event " + rec.Name, Err: err}
		}
		amount = a
	default:
		return fmt.Errorf("handler called for unconsumed event %q at position %d", rec.Name, rec.Position)
	}
	if m.before != nil {
		if err := m.before(ctx, rec); err != nil {
			return err
		}
	}
	m.mu.Lock()
	if rec.Name == "Opened" {
		m.owners[rec.Stream.ID] = string(rec.Data)
	} else {
		m.balance[m.owners[rec.Stream.ID]] += amount
	}
	m.applied[rec.Position]++
	m.pos = rec.Position
	m.mu.Unlock()
	if m.after != nil {
		return m.after(ctx, rec)
	}
	return nil
}

func (m *model) reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	return nil
}

func (m *model) position(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos, nil
}

// projection describes m as generated code would; exact selects the
// exactly-once mode.
func (m *model) projection(name string, exact bool) projection.Projection {
	p := projection.Projection{Name: name, Events: []string{"Opened", "Deposited"}, Handle: m.handle, Reset: m.reset}
	if exact {
		p.Position = m.position
	}
	return p
}

// view is the model's observable state.
func (m *model) view() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprint(m.owners, m.balance) // fmt prints maps sorted
}

// builtOnce applies the whole log once to a fresh model.
func builtOnce(t testing.TB, s runtime.Store) *model {
	t.Helper()
	m := newModel()
	for rec, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Name == "Noise" {
			continue
		}
		if err := m.handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// checkExact fails unless m equals the model built once from the log and
// applied every consumed record exactly once.
func checkExact(t testing.TB, s runtime.Store, m *model) {
	t.Helper()
	want := builtOnce(t, s)
	if got := m.view(); got != want.view() {
		t.Fatalf("read model = %s, want %s (built once)", got, want.view())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for pos, n := range want.applied {
		if m.applied[pos] != n {
			t.Fatalf("position %d applied %d times, want %d", pos, m.applied[pos], n)
		}
	}
	if len(m.applied) != len(want.applied) {
		t.Fatalf("applied %d positions, want %d", len(m.applied), len(want.applied))
	}
}

// startGroup runs g in the background; stop cancels it and returns Run's
// error.
func startGroup(t testing.TB, g *projection.Group) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t testing.TB, g *projection.Group, name string, pos uint64) {
	t.Helper()
	if err := g.WaitFor(context.Background(), name, pos); err != nil {
		t.Fatalf("waiting for %s to reach %d: %v", name, pos, err)
	}
}

func loadCheckpoint(t testing.TB, s runtime.Store, name string) uint64 {
	t.Helper()
	pos, err := s.LoadCheckpoint(context.Background(), name)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", name, err)
	}
	return pos
}

func TestProjectionCatchUpThenLive(t *testing.T) {
	for _, exact := range []bool{false, true} {
		t.Run(fmt.Sprint("exactlyOnce=", exact), func(t *testing.T) {
			store := memory.New()
			appendEvents(t, store, 50)
			m := newModel()
			g := projection.NewGroup(store)
			if err := g.Add(m.projection("balances", exact)); err != nil {
				t.Fatal(err)
			}
			stop := startGroup(t, g)
			waitFor(t, g, "balances", 50)
			checkExact(t, store, m)

			// Live: many writers at once.
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 25 {
						if _, err := deposit(context.Background(), store, fmt.Sprint("a", w%4), i+1); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			waitFor(t, g, "balances", 250)
			checkExact(t, store, m)
			st, err := g.Status(context.Background(), "balances")
			if err != nil {
				t.Fatal(err)
			}
			if st.State != projection.Running || st.Position != 250 || st.Head != 250 || st.Lag != 0 || st.ExactlyOnce != exact {
				t.Fatalf("status = %+v, want running at 250 with no lag", st)
			}
			if want := uint64(len(builtOnce(t, store).applied)); st.Handled != want {
				t.Fatalf("handled %d events, want %d", st.Handled, want)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil after cancel", err)
			}
			_, err = store.LoadCheckpoint(context.Background(), "balances")
			if exact {
				if !errors.Is(err, runtime.ErrNotFound) {
					t.Fatalf("exactly-once projection wrote a store checkpoint (err %v)", err)
				}
			} else if got := loadCheckpoint(t, store, "balances"); got != 250 {
				t.Fatalf("checkpoint after stop = %d, want 250", got)
			}
			if st, _ := g.Status(context.Background(), "balances"); st.State != projection.Stopped {
				t.Fatalf("state after stop = %v, want stopped", st.State)
			}
		})
	}
}

func TestProjectionResumesFromCheckpoint(t *testing.T) {
	store := memory.New()
	ctx := context.Background()
	appendEvents(t, store, 40)
	if err := store.SaveCheckpoint(ctx, "balances", 20); err != nil {
		t.Fatal(err)
	}
	var first atomic.Uint64
	m := newModel()
	m.before = func(_ context.Context, rec runtime.Record) error {
		first.CompareAndSwap(0, rec.Position)
		return nil
	}
	g := projection.NewGroup(store)
	if err := g.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	waitFor(t, g, "balances", 40)
	if got := first.Load(); got <= 20 {
		t.Fatalf("first handled position %d, want > 20 (checkpoint)", got)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for pos := range m.applied {
		if pos <= 20 {
			t.Fatalf("position %d at or before the checkpoint was handled", pos)
		}
	}
}

// crashStore simulates a process that dies: once dead, nothing more it
// writes reaches the underlying store.
type crashStore struct {
	runtime.Store
	dead atomic.Bool
}

var errCrashed = errors.New("simulated crash")

func (s *crashStore) SaveCheckpoint(ctx context.Context, name string, pos uint64) error {
	if s.dead.Load() {
		return errCrashed
	}
	return s.Store.SaveCheckpoint(ctx, name, pos)
}

func TestAtLeastOnceCrashReplaysOnlyUnsaved(t *testing.T) {
	const total, crashAt = 60, 30
	tests := []struct {
		every    int
		interval time.Duration
	}{
		{1, 0}, {4, 0}, {7, 0}, {1000, 0}, {0, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("every=%d", tc.every), func(t *testing.T) {
			base := memory.New()
			appendEvents(t, base, total)
			m := newModel()
			cs := &crashStore{Store: base}
			ctx, cancel := context.WithCancel(context.Background())
			m.before = func(_ context.Context, rec runtime.Record) error {
				if rec.Position == crashAt {
					cs.dead.Store(true) // power lost: nothing more is written
					cancel()
					return errCrashed
				}
				return nil
			}
			opt := projection.CheckpointEvery(tc.every, tc.interval)
			_ = projection.Run(ctx, cs, m.projection("balances", false), opt)
			cancel()

			saved, err := base.LoadCheckpoint(context.Background(), "balances")
			if errors.Is(err, runtime.ErrNotFound) {
				saved = 0
			} else if err != nil {
				t.Fatal(err)
			}
			// Records are counted from position 0, and the log was complete
			// before the start, so the last save is the last multiple of
			// every before the crash.
			var want uint64
			if tc.every > 0 {
				want = uint64((crashAt - 1) / tc.every * tc.every)
			}
			if saved != want {
				t.Fatalf("checkpoint at crash = %d, want %d", saved, want)
			}

			// Restart on the real store and let it catch up.
			m.before = nil
			g := projection.NewGroup(base, opt)
			if err := g.Add(m.projection("balances", false)); err != nil {
				t.Fatal(err)
			}
			startGroup(t, g)
			waitFor(t, g, "balances", total)
			once := builtOnce(t, base)
			m.mu.Lock()
			defer m.mu.Unlock()
			for pos := uint64(1); pos <= total; pos++ {
				wantN := once.applied[pos]
				if pos > saved && pos < crashAt {
					wantN *= 2 // handled before the crash, not yet checkpointed
				}
				if got := m.applied[pos]; got != wantN {
					t.Fatalf("position %d applied %d times, want %d (checkpoint %d, crash at %d)", pos, got, wantN, saved, crashAt)
				}
			}
		})
	}
}

func TestExactlyOnceSurvivesCrash(t *testing.T) {
	const total = 60
	tests := []struct {
		name    string
		crashAt uint64
		commit  bool // the crash comes after the read model committed the event
	}{
		{"before commit of first", 1, false},
		{"after commit of first", 1, true},
		{"before commit mid-log", 33, false},
		{"after commit mid-log", 33, true},
		{"after commit of last", total - 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := memory.New()
			appendEvents(t, store, total)
			m := newModel()
			ctx, cancel := context.WithCancel(context.Background())
			crash := func(_ context.Context, rec runtime.Record) error {
				if rec.Position == tc.crashAt {
					cancel()
					return errCrashed
				}
				return nil
			}
			if tc.commit {
				m.after = crash
			} else {
				m.before = crash
			}
			// Big checkpoint batches: exactly-once must not depend on them.
			err := projection.Run(ctx, store, m.projection("balances", true), projection.CheckpointEvery(1000, 0))
			if err != nil {
				t.Fatalf("RunProjection after the crash = %v, want nil (context cancelled)", err)
			}
			m.before, m.after = nil, nil
			wantPos := tc.crashAt - 1
			if tc.commit {
				wantPos = tc.crashAt
			}
			if pos, _ := m.position(context.Background()); pos != wantPos {
				t.Fatalf("committed position after crash = %d, want %d", pos, wantPos)
			}

			g := projection.NewGroup(store)
			if err := g.Add(m.projection("balances", true)); err != nil {
				t.Fatal(err)
			}
			startGroup(t, g)
			waitFor(t, g, "balances", total)
			checkExact(t, store, m)
		})
	}
}

// A handler that commits and then reports an error (a lost commit
// acknowledgement) is not applied again by the retry in exactly-once mode.
func TestExactlyOnceRetryAfterCommit(t *testing.T) {
	store := memory.New()
	appendEvents(t, store, 20)
	m := newModel()
	var failed atomic.Int32
	m.after = func(_ context.Context, rec runtime.Record) error {
		if rec.Position == 10 && failed.Add(1) == 1 {
			return errors.New("commit acknowledgement lost")
		}
		return nil
	}
	g := projection.NewGroup(store, projection.HandlerRetry(3, time.Microsecond))
	if err := g.Add(m.projection("balances", true)); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	waitFor(t, g, "balances", 20)
	if failed.Load() != 1 {
		t.Fatalf("the failing handler ran %d times at position 10, want 1", failed.Load())
	}
	checkExact(t, store, m)
}

func TestRebuildIsExact(t *testing.T) {
	tests := []struct {
		name    string
		exact   bool
		running bool
	}{
		{"at-least-once running", false, true},
		{"at-least-once stopped", false, false},
		{"exactly-once running", true, true},
		{"exactly-once stopped", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := memory.New()
			appendEvents(t, store, 45)
			m := newModel()
			g := projection.NewGroup(store)
			if err := g.Add(m.projection("balances", tc.exact)); err != nil {
				t.Fatal(err)
			}
			stop := startGroup(t, g)
			waitFor(t, g, "balances", 45)
			checkExact(t, store, m)
			if !tc.running {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Rebuild(ctx, "balances"); err != nil {
				t.Fatalf("Rebuild: %v", err)
			}
			if !tc.exact {
				// The checkpoint is zero, or already past it if the replay
				// has begun.
				if got := loadCheckpoint(t, store, "balances"); !tc.running && got != 0 {
					t.Fatalf("checkpoint after a stopped rebuild = %d, want 0", got)
				}
			}
			if !tc.running {
				if v := m.view(); v != "map[] map[]" {
					t.Fatalf("read model after reset = %s, want empty", v)
				}
				// Run the group again: the replay starts now.
				startGroup(t, g)
			}
			head := appendEvents(t, store, 10)
			waitFor(t, g, "balances", head)
			checkExact(t, store, m)
			st, err := g.Status(ctx, "balances")
			if err != nil {
				t.Fatal(err)
			}
			if st.Rebuilds != 1 || st.State != projection.Running {
				t.Fatalf("status after rebuild = %+v, want 1 rebuild, running", st)
			}
		})
	}
}

// failZero fails the first SaveCheckpoint that sets name to zero, as a
// crash in the middle of a rebuild would.
type failZero struct {
	runtime.Store
	name   string
	failed atomic.Bool
}

func (s *failZero) SaveCheckpoint(ctx context.Context, name string, pos uint64) error {
	if name == s.name && pos == 0 && s.failed.CompareAndSwap(false, true) {
		return errCrashed
	}
	return s.Store.SaveCheckpoint(ctx, name, pos)
}

// A rebuild interrupted after Reset but before the checkpoint is zeroed is
// finished on the next start: the replay starts from zero on an empty
// model, not from the old checkpoint.
func TestRebuildInterruptedIsFinishedOnStart(t *testing.T) {
	ctx := context.Background()
	base := memory.New()
	appendEvents(t, base, 30)
	m := newModel()
	g := projection.NewGroup(base)
	if err := g.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	stop := startGroup(t, g)
	waitFor(t, g, "balances", 30)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	crashing := projection.NewGroup(&failZero{Store: base, name: "balances"})
	if err := crashing.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	if err := crashing.Rebuild(ctx, "balances"); !errors.Is(err, errCrashed) {
		t.Fatalf("Rebuild = %v, want the simulated crash", err)
	}
	if got := loadCheckpoint(t, base, "balances"); got != 30 {
		t.Fatalf("checkpoint = %d, want the old 30 (the crash came before zeroing)", got)
	}

	g2 := projection.NewGroup(base)
	if err := g2.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g2)
	head := appendEvents(t, base, 5)
	waitFor(t, g2, "balances", head)
	checkExact(t, base, m)
}

func TestRebuildRefused(t *testing.T) {
	store := memory.New()
	m := newModel()
	p := m.projection("noreset", false)
	p.Reset = nil
	g := projection.NewGroup(store)
	if err := g.Add(p); err != nil {
		t.Fatal(err)
	}
	if err := g.Rebuild(context.Background(), "noreset"); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Rebuild without Reset = %v, want ErrInvalid", err)
	}
	if err := g.Rebuild(context.Background(), "missing"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Rebuild of an unknown projection = %v, want ErrNotFound", err)
	}
	// A Reset that leaves an exactly-once position behind is refused.
	bad := newModel()
	pb := bad.projection("badreset", true)
	pb.Reset = func(context.Context) error { return nil }
	if err := g.Add(pb); err != nil {
		t.Fatal(err)
	}
	bad.pos = 5
	if err := g.Rebuild(context.Background(), "badreset"); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Rebuild with a Reset that keeps the position = %v, want ErrInvalid", err)
	}
}

func TestHandlerErrors(t *testing.T) {
	const total, failAt = 30, 17 // 17 is a Deposited record
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		attempts  int
		failures  int   // how many calls at failAt fail (-1: all)
		corrupt   bool  // the record's bytes are bad
		wantCalls int   // calls at failAt
		wantErr   error // nil: the projection keeps going
	}{
		{"no retry", 1, -1, false, 1, errBoom},
		{"retries exhausted", 4, -1, false, 4, errBoom},
		{"transient", 3, 2, false, 3, nil},
		{"corrupt is not retried", 5, 0, true, 1, runtime.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := memory.New()
			appendEvents(t, store, failAt-1)
			if tc.corrupt {
				// Position 17 holds bytes the handler cannot decode.
				if _, err := store.Append(context.Background(), runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: "a1"}, Expected: runtime.AnyVersion,
					Events: []runtime.EventData{{Name: "Deposited", Data: []byte("12x")}}}); err != nil {
					t.Fatal(err)
				}
			} else {
				appendEvents(t, store, 1)
			}
			appendEvents(t, store, total-failAt)

			m := newModel()
			var calls atomic.Int32
			caughtUp := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			inner := m.handle
			p := m.projection("balances", false)
			p.Handle = func(ctx context.Context, rec runtime.Record) error {
				if rec.Position == failAt {
					n := calls.Add(1)
					if tc.failures < 0 || int(n) <= tc.failures {
						return errBoom
					}
				}
				err := inner(ctx, rec)
				if rec.Position == total { // the last record, a Deposited
					close(caughtUp)
				}
				return err
			}
			// Stop the run once the last record is handled (success case).
			go func() {
				select {
				case <-caughtUp:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := projection.Run(ctx, store, p, projection.HandlerRetry(tc.attempts, time.Microsecond), projection.CheckpointEvery(1, 0))
			if int(calls.Load()) != tc.wantCalls {
				t.Fatalf("handler called %d times at position %d, want %d", calls.Load(), failAt, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("RunProjection = %v, want nil", err)
				}
				return
			}
			var pe *projection.Error
			if !errors.As(err, &pe) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("RunProjection = %v, want a *ProjectionError wrapping %v", err, tc.wantErr)
			}
			want := projection.Error{Projection: "balances", Position: failAt, Stream: runtime.StreamID{Type: "account", ID: "a1"},
				Version: pe.Version, Event: "Deposited", Attempts: tc.wantCalls, Err: pe.Err}
			if *pe != want || pe.Version == 0 {
				t.Fatalf("error = %+v, want %+v", *pe, want)
			}
			for _, s := range []string{"position 17", `account/"a1"`, "Deposited", fmt.Sprintf("version %d", pe.Version)} {
				if msg := err.Error(); !contains(msg, s) {
					t.Fatalf("error message %q does not name %q", msg, s)
				}
			}
			if got := loadCheckpoint(t, store, "balances"); got != failAt-1 {
				t.Fatalf("checkpoint after failure = %d, want %d (last handled)", got, failAt-1)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A failed projection in a group stops alone, reports its error, and is
// restarted by a rebuild.
func TestGroupFailureIsolatedAndRebuildRestarts(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	appendEvents(t, store, 30)
	broken := newModel()
	var fixed atomic.Bool
	broken.before = func(_ context.Context, rec runtime.Record) error {
		if rec.Position == 10 && !fixed.Load() {
			return errors.New("bug")
		}
		return nil
	}
	healthy := newModel()
	g := projection.NewGroup(store, projection.HandlerRetry(2, time.Microsecond))
	for _, err := range []error{g.Add(broken.projection("broken", false)), g.Add(healthy.projection("healthy", true))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	stop := startGroup(t, g)
	var pe *projection.Error
	if err := g.WaitFor(ctx, "broken", 30); !errors.As(err, &pe) || pe.Position != 10 || pe.Attempts != 2 {
		t.Fatalf("WaitFor(broken) = %v, want its failure at position 10 after 2 attempts", err)
	}
	head := appendEvents(t, store, 10)
	waitFor(t, g, "healthy", head)
	checkExact(t, store, healthy)
	sts, err := g.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].Name != "broken" || sts[0].State != projection.Failed || !errors.As(sts[0].LastError, &pe) ||
		sts[0].Position != 9 || sts[0].Lag != head-9 {
		t.Fatalf("broken status = %+v", sts[0])
	}
	if sts[1].Name != "healthy" || sts[1].State != projection.Running || sts[1].LastError != nil || sts[1].Lag != 0 {
		t.Fatalf("healthy status = %+v", sts[1])
	}

	fixed.Store(true)
	if err := g.Rebuild(ctx, "broken"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, g, "broken", head)
	checkExact(t, store, broken)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil: nothing is failed at the end", err)
	}

	// A group stopped with a failed projection returns the failure.
	fixed.Store(false)
	if err := g.Rebuild(ctx, "broken"); err != nil {
		t.Fatal(err)
	}
	stop = startGroup(t, g)
	if err := g.WaitFor(ctx, "broken", head); !errors.As(err, &pe) {
		t.Fatalf("WaitFor = %v, want the failure", err)
	}
	if err := stop(); !errors.As(err, &pe) || pe.Projection != "broken" {
		t.Fatalf("Run = %v, want the failure of broken", err)
	}
}

// A rebuild requested while a handler backs off before a retry does not
// wait for the back-off (an hour here: the test would hang).
func TestRebuildInterruptsBackoff(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	appendEvents(t, store, 20)
	m := newModel()
	var fixed atomic.Bool
	failing := make(chan struct{})
	var once sync.Once
	m.before = func(_ context.Context, rec runtime.Record) error {
		if rec.Position == 10 && !fixed.Load() {
			once.Do(func() { close(failing) })
			return errors.New("transient")
		}
		return nil
	}
	g := projection.NewGroup(store, projection.HandlerRetry(5, time.Hour))
	if err := g.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	<-failing
	fixed.Store(true)
	if err := g.Rebuild(ctx, "balances"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, g, "balances", 20)
	checkExact(t, store, m)
}

// One projection blocked in its handler holds up neither appends nor the
// other projections.
func TestSlowProjectionBlocksNobody(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := newModel()
	var once sync.Once
	slow.before = func(ctx context.Context, rec runtime.Record) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fast := newModel()
	g := projection.NewGroup(store)
	for _, err := range []error{g.Add(slow.projection("slow", false)), g.Add(fast.projection("fast", false))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	startGroup(t, g)
	appendEvents(t, store, 4) // opens the accounts
	<-entered

	// Status readers run all along.
	statusDone := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-statusDone:
					return
				default:
				}
				if _, err := g.Statuses(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if _, err := deposit(ctx, store, fmt.Sprint("a", (w+i)%4), 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait() // every append returned while slow is blocked
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, g, "fast", head)
	checkExact(t, store, fast)
	st, err := g.Status(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != projection.Running || st.Position != 0 || st.Lag != head {
		t.Fatalf("slow status = %+v, want running at 0 with lag %d", st, head)
	}
	close(release)
	waitFor(t, g, "slow", head)
	checkExact(t, store, slow)
	close(statusDone)
	readers.Wait()
}

func TestEventFilter(t *testing.T) {
	store := memory.New()
	head := appendEvents(t, store, 50)
	// The model's handler fails on Noise: it must never see one.
	m := newModel()
	// nil Events: every record reaches Handle.
	var all atomic.Uint64
	everything := projection.Projection{Name: "audit", Handle: func(context.Context, runtime.Record) error { all.Add(1); return nil }}
	g := projection.NewGroup(store, projection.HandlerRetry(1, 0))
	for _, err := range []error{g.Add(m.projection("balances", false)), g.Add(everything)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	startGroup(t, g)
	waitFor(t, g, "balances", head)
	waitFor(t, g, "audit", head)
	checkExact(t, store, m)
	if all.Load() != head {
		t.Fatalf("projection without an event list handled %d records, want %d", all.Load(), head)
	}
	st, _ := g.Status(context.Background(), "balances")
	if st.Handled != uint64(len(builtOnce(t, store).applied)) || st.Handled >= head {
		t.Fatalf("handled %d of %d records; Noise must be skipped", st.Handled, head)
	}
}

func TestProjectionValidationAndNames(t *testing.T) {
	handle := func(context.Context, runtime.Record) error { return nil }
	tests := []struct {
		name string
		p    projection.Projection
		want error
	}{
		{"empty name", projection.Projection{Handle: handle}, runtime.ErrInvalid},
		{"reserved name", projection.Projection{Name: "cqrsgen:x", Handle: handle}, runtime.ErrInvalid},
		{"long name", projection.Projection{Name: string(make([]byte, runtime.MaxIDLength)), Handle: handle}, runtime.ErrTooLarge},
		{"no handle", projection.Projection{Name: "p"}, runtime.ErrInvalid},
		{"empty event name", projection.Projection{Name: "p", Events: []string{""}, Handle: handle}, runtime.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := projection.NewGroup(memory.New()).Add(tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("Add = %v, want %v", err, tc.want)
			}
			if err := projection.Run(context.Background(), memory.New(), tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("RunProjection = %v, want %v", err, tc.want)
			}
		})
	}

	store := memory.New()
	g := projection.NewGroup(store)
	p := projection.Projection{Name: "p", Handle: handle}
	if err := g.Add(p); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(p); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("second Add of one name = %v, want ErrInvalid", err)
	}
	stop := startGroup(t, g)
	appendEvents(t, store, 1)
	waitFor(t, g, "p", 1) // running, so its name is claimed
	if err := g.Add(projection.Projection{Name: "q", Handle: handle}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Add to a running group = %v, want ErrInvalid", err)
	}
	if err := g.Run(context.Background()); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("second Run = %v, want ErrInvalid", err)
	}
	// The same name on the same store, from anywhere in the process, is
	// refused while it runs; on another store it is fine.
	if err := projection.Run(context.Background(), store, p); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("RunProjection of a running name = %v, want ErrInvalid", err)
	}
	other := projection.NewGroup(store)
	if err := other.Add(p); err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("another group running the same name = %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := projection.Run(ctx, memory.New(), p); err != nil {
		t.Fatalf("RunProjection on another store = %v, want nil", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Once stopped, the name is free again.
	if err := projection.Run(ctx, store, p); err != nil {
		t.Fatalf("RunProjection after the group stopped = %v, want nil", err)
	}
	if _, err := g.Status(context.Background(), "nope"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Status of an unknown projection = %v, want ErrNotFound", err)
	}
}

func TestProjectionStoreClosed(t *testing.T) {
	store := memory.New()
	appendEvents(t, store, 10)
	m := newModel()
	g := projection.NewGroup(store)
	if err := g.Add(m.projection("balances", false)); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	waitFor(t, g, "balances", 10)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	err := g.WaitFor(context.Background(), "balances", 11)
	var pe *projection.Error
	if !errors.Is(err, runtime.ErrClosed) || !errors.As(err, &pe) || pe.Position != 10 || pe.Event != "" {
		t.Fatalf("WaitFor after Close = %v, want a *ProjectionError at 10 wrapping ErrClosed", err)
	}
}

// Cancelling the context stops every runner, wherever it is: waiting for
// events, blocked in a handler, backing off before a retry, or failed.
func TestProjectionsStopWithoutLeaks(t *testing.T) {
	before := goruntime.NumGoroutine()
	store := memory.New()
	appendEvents(t, store, 20)
	ctx, cancel := context.WithCancel(context.Background())

	idle := newModel()
	blocked := newModel()
	blocked.before = func(ctx context.Context, _ runtime.Record) error { <-ctx.Done(); return ctx.Err() }
	backoff := newModel()
	backoff.before = func(context.Context, runtime.Record) error { return errors.New("always") }
	failed := newModel()
	failed.before = backoff.before

	g := projection.NewGroup(store)
	for _, err := range []error{
		g.Add(idle.projection("idle", false)),
		g.Add(blocked.projection("blocked", true)),
		g.Add(backoff.projection("backoff", false), projection.HandlerRetry(5, time.Hour)),
		g.Add(failed.projection("failed", false), projection.HandlerRetry(1, 0)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	waitFor(t, g, "idle", 20)
	if err := g.WaitFor(context.Background(), "failed", 20); err == nil {
		t.Fatal("failed projection reached the head")
	}
	single := make(chan error, 1)
	go func() { single <- projection.Run(ctx, store, newModel().projection("single", false)) }()
	cancel()
	if err := <-single; err != nil {
		t.Fatalf("RunProjection = %v, want nil", err)
	}
	err := <-done
	var pe *projection.Error
	if !errors.As(err, &pe) || pe.Projection != "failed" {
		t.Fatalf("Run = %v, want only the failure of \"failed\"", err)
	}
	for {
		n := goruntime.NumGoroutine()
		if n <= before {
			break
		}
		if d, ok := t.Deadline(); ok && time.Until(d) < 5*time.Second {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	for _, name := range []string{"idle", "blocked", "backoff"} {
		if st, _ := g.Status(context.Background(), name); st.State != projection.Stopped {
			t.Fatalf("%s state = %v, want stopped", name, st.State)
		}
	}
}

func TestProjectionStateString(t *testing.T) {
	for s, want := range map[projection.State]string{
		projection.Stopped: "stopped", projection.Running: "running", projection.Failed: "failed",
		projection.Standby: "standby", projection.Waiting: "waiting", 9: "ProjectionState(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

// BenchmarkProjectionCatchUp measures how fast a projection catches up with
// a log of b.N events on the memory store (checkpoint every 100 records,
// a trivial handler); it reports events/s.
func BenchmarkProjectionCatchUp(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	batch := make([]runtime.EventData, 0, 1000)
	for i := 0; i < b.N; i += cap(batch) {
		batch = batch[:0]
		for j := i; j < min(b.N, i+cap(batch)); j++ {
			batch = append(batch, runtime.EventData{Name: "Deposited", Data: []byte("1")})
		}
		if _, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: fmt.Sprint("a", i)}, Expected: runtime.NoStream, Events: batch}); err != nil {
			b.Fatal(err)
		}
	}
	var sum atomic.Int64
	g := projection.NewGroup(store)
	if err := g.Add(projection.Projection{Name: "sum", Events: []string{"Deposited"}, Handle: func(_ context.Context, rec runtime.Record) error {
		sum.Add(int64(len(rec.Data)))
		return nil
	}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	stop := startGroup(b, g)
	if err := g.WaitFor(ctx, "sum", uint64(b.N)); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = stop()
	if sum.Load() != int64(b.N) {
		b.Fatalf("handled %d, want %d", sum.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkProjectionLiveLag appends b.N events one at a time at a steady
// 10,000 appends/s (below the store's capacity, so the figure is delivery
// latency, not queueing) and measures, for each, the time from just before
// Append to the handler call; it reports the median and p99.
func BenchmarkProjectionLiveLag(b *testing.B) {
	ctx := context.Background()
	store := memory.New()
	lags := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	g := projection.NewGroup(store)
	if err := g.Add(projection.Projection{Name: "lag", Handle: func(_ context.Context, rec runtime.Record) error {
		sent, err := strconv.ParseInt(string(rec.Data), 10, 64)
		if err != nil {
			return err
		}
		mu.Lock()
		lags = append(lags, time.Duration(time.Now().UnixNano()-sent))
		mu.Unlock()
		return nil
	}}); err != nil {
		b.Fatal(err)
	}
	stop := startGroup(b, g)
	b.ResetTimer()
	var last uint64
	const interval = 100 * time.Microsecond
	next := time.Now()
	for range b.N {
		for time.Now().Before(next) {
			goruntime.Gosched()
		}
		next = next.Add(interval)
		res, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: "a"}, Expected: runtime.AnyVersion,
			Events: []runtime.EventData{{Name: "Deposited", Data: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))}}})
		if err != nil {
			b.Fatal(err)
		}
		last = res.LastPosition
	}
	if err := g.WaitFor(ctx, "lag", last); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = stop()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lags[len(lags)*99/100])/1e3, "p99-µs")
}

// WaitFor answers for the group's current Run: a failure an earlier Run
// ended with is not returned, neither between runs nor right after the
// next `go group.Run(ctx)`, though Status still shows it until then.
func TestWaitForIgnoresAnEarlierRunsFailure(t *testing.T) {
	store := memory.New()
	appendEvents(t, store, 10)
	var broken atomic.Bool
	broken.Store(true)
	m := newModel()
	m.before = func(_ context.Context, rec runtime.Record) error {
		if broken.Load() && rec.Position == 5 {
			return errors.New("broken")
		}
		return nil
	}
	g := projection.NewGroup(store)
	if err := g.Add(m.projection("flaky", false), projection.HandlerRetry(1, 0)); err != nil {
		t.Fatal(err)
	}
	stop := startGroup(t, g)
	var pe *projection.Error
	if err := g.WaitFor(context.Background(), "flaky", 10); !errors.As(err, &pe) || pe.Position != 5 {
		t.Fatalf("WaitFor during the failing Run = %v, want its failure at 5", err)
	}
	if err := stop(); !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want the failure", err)
	}
	broken.Store(false)

	if st, err := g.Status(context.Background(), "flaky"); err != nil || st.State != projection.Failed || st.LastError == nil {
		t.Fatalf("Status between runs = %+v, %v; want the last Run's failure", st, err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.WaitFor(done, "flaky", 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitFor between runs = %v, want it to wait (here: for the cancelled context), not the stale failure", err)
	}
	startGroup(t, g)
	waitFor(t, g, "flaky", 10)
}
