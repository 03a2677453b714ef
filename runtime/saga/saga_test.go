package saga_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// The saga fixture is written by hand in the shape cqrsgen generates: a
// wallet aggregate (open, credit, debit, close) and a transfer saga that
// debits one wallet and credits another, refunding the source when the
// credit is rejected or times out.

type wallet struct {
	Open, Closed bool
	Balance      int64
}

type walletEvent struct {
	Name   string // opened, credited, debited, closed
	Amount int64
	Ref    string
}

type walletCmd struct {
	Op     string // open, credit, debit, close
	Amount int64
	Ref    string
}

var (
	errWalletClosed = errors.New("wallet: closed")
	errNotOpen      = errors.New("wallet: not open")
	errNoFunds      = errors.New("wallet: insufficient funds")
)

var walletAgg = &runtime.Aggregate[wallet, walletEvent, walletCmd]{
	Type: "wallet",
	Apply: func(w *wallet, e walletEvent) {
		switch e.Name {
		case "opened":
			w.Open = true
		case "credited":
			w.Balance += e.Amount
		case "debited":
			w.Balance -= e.Amount
		case "closed":
			w.Open, w.Closed = false, true
		}
	},
	Decide: func(w *wallet, c walletCmd) ([]walletEvent, error) {
		switch {
		case w.Closed:
			return nil, errWalletClosed
		case c.Op == "open":
			return []walletEvent{{Name: "opened"}}, nil
		case !w.Open:
			return nil, errNotOpen
		case c.Op == "debit" && c.Amount > w.Balance:
			return nil, errNoFunds
		}
		name := map[string]string{"credit": "credited", "debit": "debited", "close": "closed"}[c.Op]
		return []walletEvent{{Name: name, Amount: c.Amount, Ref: c.Ref}}, nil
	},
	EncodeEvent: func(e walletEvent) (runtime.EventData, error) {
		return runtime.EventData{Name: e.Name, Schema: 1, Data: []byte(strconv.FormatInt(e.Amount, 10) + "|" + e.Ref)}, nil
	},
	DecodeEvent: func(name string, _ uint32, data []byte) (walletEvent, error) {
		amount, ref, _ := strings.Cut(string(data), "|")
		n, err := strconv.ParseInt(amount, 10, 64)
		return walletEvent{Name: name, Amount: n, Ref: ref}, err
	},
}

// transfer is the saga's state.
type transfer struct {
	From, To string
	Amount   int64
	Credited bool
}

// transferOptions vary the fixture saga per test.
type transferOptions struct {
	// execute wraps the repository's Execute (counting, failing).
	execute func(ctx context.Context, id string, c walletCmd, opts ...runtime.ExecOption) (uint64, error)
	// timeout is the credit deadline (default one hour).
	timeout time.Duration
}

const sagaName = "transfer"

// newTransferSaga returns the transfer saga over the wallets of repo.
func newTransferSaga(repo *runtime.Repository[wallet, walletEvent, walletCmd], o transferOptions) *saga.Saga[transfer] {
	if o.execute == nil {
		o.execute = repo.Execute
	}
	if o.timeout == 0 {
		o.timeout = time.Hour
	}
	onRequested := func(e transferRequest) func(context.Context, *transfer, *saga.Actions) error {
		return func(_ context.Context, s *transfer, do *saga.Actions) error {
			s.From, s.To, s.Amount = e.From, e.To, e.Amount
			do.Send(s.From, walletCmd{Op: "debit", Amount: s.Amount, Ref: "transfer:" + do.Instance()}).
				Compensate(s.From, walletCmd{Op: "credit", Amount: s.Amount, Ref: "refund:" + do.Instance()})
			do.Deadline("credit", o.timeout)
			return nil
		}
	}
	onDebited := func(_ context.Context, s *transfer, do *saga.Actions) error {
		do.Send(s.To, walletCmd{Op: "credit", Amount: s.Amount, Ref: "transfer:" + do.Instance()}).
			Compensate(s.To, walletCmd{Op: "debit", Amount: s.Amount, Ref: "reverse:" + do.Instance()})
		return nil
	}
	onCredited := func(_ context.Context, s *transfer, do *saga.Actions) error {
		s.Credited = true
		do.CancelDeadline("credit")
		do.Complete()
		return nil
	}
	return &saga.Saga[transfer]{
		Name:   sagaName,
		Events: []string{"transfer-requested", "debited", "credited"},
		Correlate: func(rec runtime.Record) (string, func(context.Context, *transfer, *saga.Actions) error, bool, error) {
			switch rec.Name {
			case "transfer-requested":
				e, err := decodeRequest(rec.Data)
				if err != nil {
					return "", nil, false, &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: rec.Name, Err: err}
				}
				return rec.Stream.ID, onRequested(e), true, nil
			case "debited", "credited":
				id, ok := saga.SentBy(rec.Metadata, sagaName)
				if !ok {
					return "", nil, false, nil
				}
				if rec.Name == "debited" {
					return id, onDebited, true, nil
				}
				return id, onCredited, true, nil
			}
			return "", nil, false, nil
		},
		Deadline: func(_ context.Context, s *transfer, d saga.Deadline, do *saga.Actions) error {
			if d.Name == "credit" && !s.Credited {
				do.Fail(fmt.Errorf("credit to %s timed out", s.To))
			}
			return nil
		},
		Execute: func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
			cmd, ok := c.(walletCmd)
			if !ok {
				return 0, fmt.Errorf("%w: saga %s does not route %T", runtime.ErrInvalid, sagaName, c)
			}
			return o.execute(ctx, id, cmd, opts...)
		},
		EncodeState: func(s *transfer) ([]byte, error) {
			return fmt.Appendf(nil, "%s|%s|%d|%t", s.From, s.To, s.Amount, s.Credited), nil
		},
		DecodeState: func(data []byte, s *transfer) error {
			parts := strings.Split(string(data), "|")
			if len(parts) != 4 {
				return fmt.Errorf("bad state %q", data)
			}
			n, err := strconv.ParseInt(parts[2], 10, 64)
			s.From, s.To, s.Amount, s.Credited = parts[0], parts[1], n, parts[3] == "true"
			return err
		},
	}
}

type transferRequest struct {
	From, To string
	Amount   int64
}

func decodeRequest(data []byte) (transferRequest, error) {
	parts := strings.Split(string(data), "|")
	if len(parts) != 3 {
		return transferRequest{}, fmt.Errorf("bad request %q", data)
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	return transferRequest{From: parts[0], To: parts[1], Amount: n}, err
}

// requestTransfer appends the event that starts transfer id.
func requestTransfer(t testing.TB, s runtime.Store, id, from, to string, amount int64) {
	t.Helper()
	_, err := s.Append(context.Background(), runtime.AppendRequest{
		Stream: runtime.StreamID{Type: "transfer-request", ID: id}, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: "transfer-requested", Schema: 1, Data: fmt.Appendf(nil, "%s|%s|%d", from, to, amount)}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// backend opens stores of one kind; reopen gives the same data after a
// restart (Pebble: close and open the directory; memory: the same store).
type backend struct {
	name string
	open func(t *testing.T) (s runtime.Store, reopen func() runtime.Store)
}

var backends = []backend{
	{"memory", func(t *testing.T) (runtime.Store, func() runtime.Store) {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s, func() runtime.Store { return s }
	}},
	{"pebble", func(t *testing.T) (runtime.Store, func() runtime.Store) {
		dir := filepath.Join(t.TempDir(), "store")
		s, err := pebble.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		cur := s
		t.Cleanup(func() { cur.Close() })
		return s, func() runtime.Store {
			if err := cur.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := pebble.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur = s
			return s
		}
	}},
}

// fixture is a store with wallets a (balance 100), b and closed wallet c.
type fixture struct {
	store runtime.Store
	repo  *runtime.Repository[wallet, walletEvent, walletCmd]
	clock *saga.ManualClock
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newFixture(t *testing.T, s runtime.Store) *fixture {
	t.Helper()
	f := &fixture{store: s, repo: runtime.NewRepository(s, walletAgg), clock: saga.NewManualClock(epoch)}
	ctx := context.Background()
	for _, c := range []struct {
		id  string
		cmd walletCmd
	}{{"a", walletCmd{Op: "open"}}, {"a", walletCmd{Op: "credit", Amount: 100}}, {"b", walletCmd{Op: "open"}},
		{"c", walletCmd{Op: "open"}}, {"c", walletCmd{Op: "close"}}} {
		if _, err := f.repo.Execute(ctx, c.id, c.cmd); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) use(s runtime.Store) {
	f.store, f.repo = s, runtime.NewRepository(s, walletAgg)
}

// sagaRun is a running saga: stop cancels it and returns RunSaga's result;
// wait waits for it to end by itself.
type sagaRun struct {
	t    *testing.T
	stop func() error
	done chan struct{}
	err  error
}

func (r *sagaRun) wait() error {
	r.t.Helper()
	deadline, ok := r.t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Until(deadline) - 5*time.Second):
		r.t.Fatal("the saga runner did not stop by itself")
		return nil
	}
}

// run starts the saga.
func (f *fixture) run(t *testing.T, s runtime.Store, sg *saga.Saga[transfer], opts ...saga.Option) *sagaRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &sagaRun{t: t, done: make(chan struct{})}
	opts = append([]saga.Option{saga.WithClock(f.clock), saga.Retry(3, 0),
		saga.Projection(projection.HandlerRetry(1, 0))}, opts...)
	go func() {
		defer close(r.done)
		r.err = saga.Run(ctx, s, sg, opts...)
	}()
	r.stop = func() error {
		cancel()
		<-r.done
		return r.err
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func (f *fixture) balance(t *testing.T, id string) int64 {
	t.Helper()
	w, _, err := f.repo.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return w.Balance
}

// refs lists the refs of the wallet's events with the given name.
func (f *fixture) refs(t *testing.T, id, name string) []string {
	t.Helper()
	var out []string
	for env, err := range f.repo.Events(context.Background(), id, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if env.Event.Name == name {
			out = append(out, env.Event.Ref)
		}
	}
	return out
}

// waitSaga waits (saga.WaitFor) until the instance satisfies done and
// returns it; it gives up when the test's deadline nears.
func waitSaga(t *testing.T, s runtime.Store, sg *saga.Saga[transfer], id string, done func(*saga.Instance[transfer]) bool) *saga.Instance[transfer] {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-5*time.Second))
	defer cancel()
	in, err := saga.WaitFor(ctx, s, sg, id, done)
	if err != nil {
		if in != nil {
			t.Fatalf("instance %s never got there: %v; status %v, steps %+v", id, err, in.Status, in.Steps)
		}
		t.Fatal(err)
	}
	return in
}

func final(in *saga.Instance[transfer]) bool { return in.Status.Final() }

func stepStatuses(in *saga.Instance[transfer]) string {
	var parts []string
	for _, s := range in.Steps {
		parts = append(parts, fmt.Sprintf("%d:%s", s.Seq, s.Status))
	}
	return strings.Join(parts, " ")
}

func TestSagaHappyPathAndCompensation(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, _ := b.open(t)
			f := newFixture(t, store)
			sg := newTransferSaga(f.repo, transferOptions{})
			stop := f.run(t, store, sg).stop
			requestTransfer(t, store, "t1", "a", "b", 30) // completes
			requestTransfer(t, store, "t2", "a", "c", 20) // c is closed: refund a
			requestTransfer(t, store, "t3", "b", "a", 99) // b lacks funds: nothing to compensate

			for _, c := range []struct {
				id, status, steps, reason string
			}{
				{"t1", "completed", "1:completed 2:completed", ""},
				{"t2", "compensated", "1:compensated 2:failed", "wallet: closed"},
				{"t3", "compensated", "1:failed", "wallet: insufficient funds"},
			} {
				in := waitSaga(t, store, sg, c.id, final)
				if in.Status.String() != c.status || stepStatuses(in) != c.steps || !strings.Contains(in.Reason, c.reason) {
					t.Errorf("%s: status %v steps %q reason %q; want %s, %q, reason containing %q",
						c.id, in.Status, stepStatuses(in), in.Reason, c.status, c.steps, c.reason)
				}
				if len(in.Deadlines) != 0 {
					t.Errorf("%s: deadlines %v left on a final instance", c.id, in.Deadlines)
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if a, b := f.balance(t, "a"), f.balance(t, "b"); a != 70 || b != 30 {
				t.Errorf("balances a=%d b=%d, want 70 and 30", a, b)
			}
			if got := f.refs(t, "a", "credited"); strings.Join(got, ",") != ",refund:t2" {
				t.Errorf("credits of a: %q, want the opening credit and one refund", got)
			}
			in, _ := saga.Load(context.Background(), store, sg, "t1")
			if in.State.From != "a" || in.State.To != "b" || in.State.Amount != 30 || !in.State.Credited {
				t.Errorf("t1 state %+v", in.State)
			}
		})
	}
}

// TestSagaDeadlineFiresAfterRestart stops the runner while the credit is
// in flight, moves the clock past the deadline and starts a new runner on
// the reopened store: the deadline fires there and the debit is refunded.
func TestSagaDeadlineFiresAfterRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, reopen := b.open(t)
			f := newFixture(t, store)
			blocked := make(chan struct{})
			var once sync.Once
			stuck := transferOptions{execute: func(ctx context.Context, id string, c walletCmd, opts ...runtime.ExecOption) (uint64, error) {
				if c.Op == "credit" && id == "b" {
					once.Do(func() { close(blocked) })
					<-ctx.Done() // the credit never gets through
					return 0, ctx.Err()
				}
				return f.repo.Execute(ctx, id, c, opts...)
			}}
			sg := newTransferSaga(f.repo, stuck)
			stop := f.run(t, store, sg).stop
			requestTransfer(t, store, "t1", "a", "b", 30)
			<-blocked
			if err := stop(); err != nil {
				t.Fatalf("a cancelled runner returns nil, got %v", err)
			}
			in := waitSaga(t, store, sg, "t1", func(*saga.Instance[transfer]) bool { return true })
			if in.Status != saga.Running || stepStatuses(in) != "1:completed 2:pending" || len(in.Deadlines) != 1 {
				t.Fatalf("after the stop: %v %q deadlines %v", in.Status, stepStatuses(in), in.Deadlines)
			}
			if want := epoch.Add(time.Hour); !in.Deadlines[0].At.Equal(want) {
				t.Errorf("deadline at %v, want %v", in.Deadlines[0].At, want)
			}

			store = reopen()
			f.use(store)
			f.clock.Advance(2 * time.Hour)
			sg = newTransferSaga(f.repo, transferOptions{})
			stop = f.run(t, store, sg).stop
			in = waitSaga(t, store, sg, "t1", final)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if in.Status != saga.Compensated || !strings.Contains(in.Reason, "timed out") {
				t.Errorf("status %v reason %q, want compensated after the timeout", in.Status, in.Reason)
			}
			// Whether the new runner executed the pending credit before the
			// deadline fired or not, money is neither lost nor created.
			if a, b := f.balance(t, "a"), f.balance(t, "b"); a != 100 || b != 0 {
				t.Errorf("balances a=%d b=%d, want 100 and 0; steps %q", a, b, stepStatuses(in))
			}
			if got := f.refs(t, "a", "debited"); len(got) != 1 {
				t.Errorf("a debited %d times (%q), want once", len(got), got)
			}
			// The refund, run by a new runner after the restart, is still
			// caused by the request (read back from the store).
			var reqPos uint64
			for rec, err := range store.ReadStream(context.Background(), runtime.StreamID{Type: "transfer-request", ID: "t1"}, 0) {
				if err != nil {
					t.Fatal(err)
				}
				reqPos = rec.Position
			}
			for _, rec := range walletRecords(t, store, "a") {
				if strings.HasSuffix(string(rec.Data), "|refund:t1") {
					if ref := refAt(t, store, reqPos); rec.Metadata[runtime.MetadataCausation] != ref || rec.Metadata[runtime.MetadataCorrelation] != ref {
						t.Errorf("refund metadata %v, want causation and correlation %s", rec.Metadata, ref)
					}
				}
			}
		})
	}
}

// failingStore fails one kind of append once, like a process dying there.
type failingStore struct {
	runtime.Store
	failOn func(req runtime.AppendRequest) bool
	failed atomic.Bool
}

var errCrash = fmt.Errorf("simulated crash: %w", runtime.ErrClosed)

func (s *failingStore) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	if s.failOn(req) && s.failed.CompareAndSwap(false, true) {
		return runtime.AppendResult{}, errCrash
	}
	return s.Store.Append(ctx, req)
}

// TestSagaResumesWithoutRepeatingAStep kills the runner at each point
// between two steps (a failing append stands for the process dying there)
// and restarts it: the transfer completes exactly once.
func TestSagaResumesWithoutRepeatingAStep(t *testing.T) {
	points := []struct {
		name   string
		failOn func(runtime.AppendRequest) bool
	}{
		{"before the reaction is persisted", func(r runtime.AppendRequest) bool { return r.Events[0].Name == "cqrsgen.saga.reacted" }},
		{"after the debit, before its outcome is persisted", func(r runtime.AppendRequest) bool {
			return r.Events[0].Name == "cqrsgen.saga.step-completed"
		}},
		{"after the credit's reaction, before the credit", func(r runtime.AppendRequest) bool {
			return r.Stream.ID == "b" && r.Events[0].Name == "credited"
		}},
		{"after the credit, before its outcome is persisted", func(r runtime.AppendRequest) bool {
			return r.Events[0].Name == "cqrsgen.saga.step-completed" && r.Events[0].Data[1] == 2 // seq 2
		}},
		{"before the end is persisted", func(r runtime.AppendRequest) bool { return r.Events[0].Name == "cqrsgen.saga.ended" }},
	}
	for _, b := range backends {
		for _, p := range points {
			t.Run(b.name+"/"+p.name, func(t *testing.T) {
				store, reopen := b.open(t)
				f := newFixture(t, store)
				crashing := &failingStore{Store: store, failOn: p.failOn}
				repo := runtime.NewRepository[wallet, walletEvent, walletCmd](crashing, walletAgg)
				sg := newTransferSaga(repo, transferOptions{})
				run := f.run(t, crashing, sg)
				requestTransfer(t, store, "t1", "a", "b", 30)
				err := run.wait()
				if !errors.Is(err, runtime.ErrClosed) {
					t.Fatalf("runner: %v, want the simulated crash", err)
				}

				store = reopen()
				f.use(store)
				sg = newTransferSaga(f.repo, transferOptions{})
				stop := f.run(t, store, sg).stop
				in := waitSaga(t, store, sg, "t1", final)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if in.Status != saga.Completed || stepStatuses(in) != "1:completed 2:completed" {
					t.Fatalf("status %v steps %q", in.Status, stepStatuses(in))
				}
				if got := f.refs(t, "a", "debited"); len(got) != 1 {
					t.Errorf("a debited %d times, want once", len(got))
				}
				if got := f.refs(t, "b", "credited"); len(got) != 1 {
					t.Errorf("b credited %d times, want once", len(got))
				}
				if a, b := f.balance(t, "a"), f.balance(t, "b"); a != 70 || b != 30 {
					t.Errorf("balances a=%d b=%d, want 70 and 30", a, b)
				}
			})
		}
	}
}

// TestSagaRetries: transient errors are retried, business errors are not.
func TestSagaRetries(t *testing.T) {
	cases := []struct {
		name       string
		failures   int
		err        error
		wantStatus saga.Status
		wantCalls  int
		wantRunErr bool
	}{
		{"transient then success", 2, saga.MarkTransient(errors.New("network blip")), saga.Completed, 3, false},
		{"conflict then success", 1, &runtime.ConflictError{Stream: runtime.StreamID{Type: "wallet", ID: "b"}, Expected: 1, Actual: 2}, saga.Completed, 2, false},
		{"business error", 1, errWalletClosed, saga.Compensated, 1, false},
		{"transient for ever", 100, saga.MarkTransient(errors.New("down")), saga.Running, 3, true},
	}
	for _, b := range backends {
		for _, c := range cases {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				store, _ := b.open(t)
				f := newFixture(t, store)
				var calls atomic.Int32
				sg := newTransferSaga(f.repo, transferOptions{execute: func(ctx context.Context, id string, cmd walletCmd, opts ...runtime.ExecOption) (uint64, error) {
					if cmd.Op == "credit" && id == "b" {
						if n := calls.Add(1); int(n) <= c.failures {
							return 0, c.err
						}
					}
					return f.repo.Execute(ctx, id, cmd, opts...)
				}})
				run := f.run(t, store, sg)
				requestTransfer(t, store, "t1", "a", "b", 30)
				var in *saga.Instance[transfer]
				if c.wantRunErr {
					err := run.wait()
					var se *saga.Error
					if !errors.As(err, &se) || se.Seq != 2 || !strings.Contains(err.Error(), "giving up after 3 tries") {
						t.Fatalf("runner error %v, want a *SagaError on step 2 giving up", err)
					}
					in = waitSaga(t, store, sg, "t1", func(*saga.Instance[transfer]) bool { return true })
				} else {
					in = waitSaga(t, store, sg, "t1", final)
					if err := run.stop(); err != nil {
						t.Fatal(err)
					}
				}
				if in.Status != c.wantStatus {
					t.Errorf("status %v, want %v (steps %q)", in.Status, c.wantStatus, stepStatuses(in))
				}
				if got := int(calls.Load()); got != c.wantCalls {
					t.Errorf("credit tried %d times, want %d", got, c.wantCalls)
				}
				if !c.wantRunErr && in.Steps[1].Tries != c.wantCalls {
					t.Errorf("step 2 recorded %d tries, want %d", in.Steps[1].Tries, c.wantCalls)
				}
			})
		}
	}
}

// twin is a second handle on a store: the runtime sees another store, so a
// second runner of the same saga can run in this process, as it would in
// another process.
type twin struct{ runtime.Store }

// TestSagaConcurrentRunnersAndEvents runs two runners of one saga over one
// store while many transfers, some between the same wallets, are requested
// from many goroutines: every step executes once and every transfer ends
// once.
func TestSagaConcurrentRunnersAndEvents(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, _ := b.open(t)
			f := newFixture(t, store)
			sg := newTransferSaga(f.repo, transferOptions{})
			stop1 := f.run(t, store, sg).stop
			stop2 := f.run(t, twin{store}, newTransferSaga(f.repo, transferOptions{})).stop
			const n = 20
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					requestTransfer(t, store, fmt.Sprintf("t%02d", i), "a", "b", 1)
				}()
			}
			wg.Wait()
			for i := range n {
				in := waitSaga(t, store, sg, fmt.Sprintf("t%02d", i), final)
				if in.Status != saga.Completed || in.Reactions != 3 {
					t.Errorf("t%02d: %v after %d reactions, want completed after 3", i, in.Status, in.Reactions)
				}
			}
			for _, stop := range []func() error{stop1, stop2} {
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
			if a, b := f.balance(t, "a"), f.balance(t, "b"); a != 100-n || b != n {
				t.Errorf("balances a=%d b=%d, want %d and %d", a, b, 100-n, n)
			}
			debits := f.refs(t, "a", "debited")
			seen := map[string]bool{}
			for _, r := range debits {
				if seen[r] {
					t.Errorf("debit %s executed twice", r)
				}
				seen[r] = true
			}
			if len(debits) != n {
				t.Errorf("%d debits, want %d", len(debits), n)
			}
		})
	}
}

func TestSagaStepKey(t *testing.T) {
	long := strings.Repeat("x", runtime.MaxIDLength)
	keys := map[string]string{}
	for _, c := range []struct {
		sg, id string
		seq    uint64
		comp   bool
	}{
		{"a", "b:1", 1, false}, {"a:b", "1", 1, false}, {"a", "b", 11, false}, {"a", "b:1", 1, true},
		{"a", long, 1, false}, {"a", long + "y", 1, false}, {"a", "b", 1, false},
	} {
		k := saga.StepKey(c.sg, c.id, c.seq, c.comp)
		if len(k) > runtime.MaxIDLength {
			t.Errorf("key for %+v is %d bytes", c, len(k))
		}
		if prev, dup := keys[k]; dup {
			t.Errorf("key %q for %+v already used by %s", k, c, prev)
		}
		keys[k] = fmt.Sprintf("%+v", c)
		if again := saga.StepKey(c.sg, c.id, c.seq, c.comp); again != k {
			t.Errorf("key not stable: %q then %q", k, again)
		}
	}
}

func TestSagaValidation(t *testing.T) {
	store := memory.New()
	defer store.Close()
	good := newTransferSaga(runtime.NewRepository(store, walletAgg), transferOptions{})
	for _, c := range []struct {
		name string
		edit func(s *saga.Saga[transfer])
		want error
	}{
		{"empty name", func(s *saga.Saga[transfer]) { s.Name = "" }, runtime.ErrInvalid},
		{"long name", func(s *saga.Saga[transfer]) { s.Name = strings.Repeat("n", 250) }, runtime.ErrTooLarge},
		{"no correlate", func(s *saga.Saga[transfer]) { s.Correlate = nil }, runtime.ErrInvalid},
		{"no execute", func(s *saga.Saga[transfer]) { s.Execute = nil }, runtime.ErrInvalid},
		{"no codec", func(s *saga.Saga[transfer]) { s.DecodeState = nil }, runtime.ErrInvalid},
	} {
		s := *good
		c.edit(&s)
		if err := saga.Run(context.Background(), store, &s); !errors.Is(err, c.want) {
			t.Errorf("%s: RunSaga = %v, want %v", c.name, err, c.want)
		}
		if _, err := saga.Load(context.Background(), store, &s, "x"); !errors.Is(err, c.want) {
			t.Errorf("%s: LoadSaga = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestClassifyError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want saga.ErrorClass
	}{
		{errWalletClosed, saga.Business},
		{fmt.Errorf("wrapped: %w", errNoFunds), saga.Business},
		{saga.MarkTransient(errors.New("x")), saga.Transient},
		{&runtime.ConflictError{}, saga.Transient},
		{context.DeadlineExceeded, saga.Transient},
		{context.Canceled, saga.Fatal},
		{fmt.Errorf("x: %w", runtime.ErrClosed), saga.Fatal},
		{&runtime.DecodeError{}, saga.Fatal},
		{runtime.ErrInvalid, saga.Fatal},
	} {
		if got := saga.ClassifyError(c.err); got != c.want {
			t.Errorf("ClassifyError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// stateV2 makes the fixture saga write its state in a new format, schema
// version 2, that DecodeState of version 1 cannot read and vice versa
// (as a retyped field would); upcast selects whether it can still read
// version 1 states.
func stateV2(sg *saga.Saga[transfer], upcast bool) *saga.Saga[transfer] {
	v1 := sg.DecodeState
	sg.StateVersion = 2
	sg.EncodeState = func(s *transfer) ([]byte, error) {
		return fmt.Appendf(nil, "v2;%s;%s;%d;%t", s.From, s.To, s.Amount, s.Credited), nil
	}
	sg.DecodeState = func(data []byte, s *transfer) error {
		parts := strings.Split(string(data), ";")
		if len(parts) != 5 || parts[0] != "v2" {
			return fmt.Errorf("bad v2 state %q", data)
		}
		n, err := strconv.ParseInt(parts[3], 10, 64)
		s.From, s.To, s.Amount, s.Credited = parts[1], parts[2], n, parts[4] == "true"
		return err
	}
	sg.UpcastState = nil
	if upcast {
		sg.UpcastState = func(version uint32, data []byte, s *transfer) error {
			if version != 1 {
				return &saga.StateVersionError{Saga: sg.Name, Stored: version, Current: 2}
			}
			return v1(data, s)
		}
	}
	return sg
}

// TestSagaStateSchemaChange leaves two instances in flight under state
// schema version 1 (t1 debited with its credit pending, t2 debited), then changes the state's
// encoding to version 2: without an upcaster the instances cannot be
// loaded and the runner stops with an error naming the stored version;
// with one, the runner finishes both: it replays t1's version 1 state to
// re-issue the pending credit, and reacts to t2's debit on its version 1
// state, then compensates t2 when its credit is rejected.
func TestSagaStateSchemaChange(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, reopen := b.open(t)
			f := newFixture(t, store)
			var blocked sync.WaitGroup
			blocked.Add(1)
			stuck := transferOptions{execute: func(ctx context.Context, id string, c walletCmd, opts ...runtime.ExecOption) (uint64, error) {
				if c.Op == "credit" && c.Ref != "" {
					blocked.Done()
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return f.repo.Execute(ctx, id, c, opts...)
			}}
			// Both start before the runner: it debits a for each, then
			// reacts to t1's debit and is stuck in its credit, before it
			// reacts to t2's.
			requestTransfer(t, store, "t1", "a", "b", 30) // b takes the credit
			requestTransfer(t, store, "t2", "a", "c", 20) // c is closed: refund a
			r := f.run(t, store, newTransferSaga(f.repo, stuck))
			blocked.Wait()
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			v1 := newTransferSaga(f.repo, transferOptions{})
			for id, want := range map[string]string{"t1": "1:completed 2:pending", "t2": "1:completed"} {
				in := waitSaga(t, store, v1, id, func(*saga.Instance[transfer]) bool { return true })
				if in.Status != saga.Running || stepStatuses(in) != want {
					t.Fatalf("%s in flight: %v %q, want running %q", id, in.Status, stepStatuses(in), want)
				}
			}

			store = reopen()
			f.use(store)
			ctx := context.Background()
			broken := stateV2(newTransferSaga(f.repo, transferOptions{}), false)
			_, err := saga.Load(ctx, store, broken, "t1")
			var de *runtime.DecodeError
			var ve *saga.StateVersionError
			if !errors.As(err, &de) || !errors.As(err, &ve) || ve.Stored != 1 || ve.Current != 2 || de.Stream.ID != "t1" || de.Version == 0 {
				t.Fatalf("LoadSaga without an upcaster = %v, want a *DecodeError naming t1's stream and version, wrapping a *StateVersionError 1 → 2", err)
			}
			if err := f.run(t, store, broken).wait(); !errors.As(err, &ve) {
				t.Fatalf("RunSaga without an upcaster = %v, want it to stop with the *StateVersionError", err)
			}

			sg := stateV2(newTransferSaga(f.repo, transferOptions{}), true)
			stop := f.run(t, store, sg).stop
			t1 := waitSaga(t, store, sg, "t1", final)
			t2 := waitSaga(t, store, sg, "t2", final)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if t1.Status != saga.Completed || stepStatuses(t1) != "1:completed 2:completed" || t1.State.Amount != 30 || !t1.State.Credited {
				t.Errorf("t1: %v %q state %+v, want completed", t1.Status, stepStatuses(t1), t1.State)
			}
			if t2.Status != saga.Compensated || stepStatuses(t2) != "1:compensated 2:failed" || t2.State.To != "c" {
				t.Errorf("t2: %v %q state %+v, want compensated", t2.Status, stepStatuses(t2), t2.State)
			}
			if a, b := f.balance(t, "a"), f.balance(t, "b"); a != 70 || b != 30 {
				t.Errorf("balances a=%d b=%d, want 70 and 30", a, b)
			}
		})
	}
}
