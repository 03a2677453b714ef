package transfer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/examples/bank/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// Environment of the kill test: killChildEnv (the store's directory)
// switches the test binary into the child that runs the bank; killSeedEnv
// replays a logged seed.
const (
	killChildEnv = "CQRSGEN_TRANSFER_KILL_CHILD"
	killSeedEnv  = "CQRSGEN_TRANSFER_KILL_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	os.Exit(m.Run())
}

// Accounts of the kill test: killAccounts open with killOpening cents
// each, killClosed is closed (deposits to it are rejected, so transfers to
// it are compensated).
var killAccounts = []string{"alice", "bob", "carol", "dave"}

const (
	killClosed  = "closed"
	killOpening = 1000_00
)

// planned is one transfer the child requests.
type planned struct {
	id       string
	from, to string
	amount   int64
}

// killPlan is the fixed list of transfers: every account both sends and
// receives, every fifth transfer goes to the closed account, and each
// account's opening balance covers everything it sends, so every outcome is
// known whatever order the saga runs them in.
func killPlan() []planned {
	var plan []planned
	for i := range 20 {
		from := killAccounts[i%4]
		to := killAccounts[(i+1+(i/4)%3)%4] // never from
		if i%5 == 4 {
			to = killClosed
		}
		plan = append(plan, planned{id: fmt.Sprintf("t%02d", i), from: from, to: to, amount: int64(100*(i+1) + i)})
	}
	return plan
}

// killClock is the saga clock of every child run: it never moves, so the
// deposit deadline never fires and the outcome of each transfer does not
// depend on how long the kills held it up.
var killClock = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// killChild opens the store in dir, runs the transfer saga, requests every
// planned transfer (under idempotency keys, so a restarted child requests
// nothing twice) and waits for all of them to end. It writes one line per
// acknowledgement to stdout, unbuffered, so a line the parent read is a
// result the child had: "req <id> v<version>" per request, "step <target>
// <command> <reference> v<version>|rejected" per executed saga step, and
// "done" at the end. It returns the exit code.
func killChild(dir string) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "kill child: "+format+"\n", args...)
		return code
	}
	s, err := pebble.Open(dir, pebble.WithLogger(quietLogger()))
	if err != nil {
		return fail(2, "open: %v", err)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	accounts := account.NewAccountRepository(s)
	sg := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})
	logged := *sg
	logged.Execute = func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
		v, err := sg.Execute(ctx, id, c, opts...)
		var ref string
		switch c := c.(type) {
		case account.Deposit:
			ref = c.Reference
		case account.Withdraw:
			ref = c.Reference
		}
		switch {
		case err == nil:
			say("step %s %T %s v%d", id, c, ref, v)
		case saga.ClassifyError(err) == saga.Business:
			say("step %s %T %s rejected", id, c, ref)
		}
		return v, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- saga.Run(ctx, s, &logged, saga.WithClock(saga.NewManualClock(killClock)))
	}()
	requests := transfer.NewRequestRepository(s)
	for _, p := range killPlan() {
		v, err := requests.Execute(ctx, p.id, transfer.RequestTransfer{From: p.from, To: p.to, Amount: p.amount},
			runtime.IdempotencyKey("kill-test request "+p.id))
		if err != nil {
			return fail(3, "request %s: %v", p.id, err)
		}
		say("req %s v%d", p.id, v)
	}
	// Wait for each transfer's saga to end; a runner that stops first ends
	// the waits (stopped), so the child reports it instead of hanging.
	waitCtx, stopWaits := context.WithCancel(ctx)
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = <-done; close(stopped); stopWaits() }()
	for _, p := range killPlan() {
		if _, err := saga.WaitFor(waitCtx, s, sg, p.id, nil); err != nil {
			select {
			case <-stopped:
				return fail(5, "saga runner stopped with %s unfinished: %v", p.id, runErr)
			default:
				return fail(4, "wait for saga %s: %v", p.id, err)
			}
		}
	}
	cancel()
	<-stopped
	if runErr != nil {
		return fail(6, "saga runner: %v", runErr)
	}
	if err := s.Close(); err != nil {
		return fail(7, "close: %v", err)
	}
	say("done")
	return 0
}

// stepAck is a step the child reported: its target account, command type
// and reference ("transfer t03", "refund t04").
type stepAck struct{ target, command, reference string }

// childRun is what the parent saw of one child run.
type childRun struct {
	steps int // step lines read
	// repeats counts step lines for a step acknowledged before: the kill
	// fell between the step's command and the record of its outcome, and
	// the step ran again under its idempotency key.
	repeats int
	done    bool // the child reported "done"
	killed  bool // the child died of the parent's SIGKILL
}

// runChild starts a child on dir and reads its lines into reqs and steps
// (checking that a repeated acknowledgement repeats the first result).
// killAfter > 0 SIGKILLs it delay after its killAfter-th step line;
// otherwise it runs to the end.
func runChild(ctx context.Context, t *testing.T, exe, dir string, killAfter int, delay time.Duration,
	reqs map[string]uint64, steps map[stepAck]string) childRun {
	t.Helper()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var run childRun
	sc := bufio.NewScanner(out)
	parse := func(line string) error {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "done":
			run.done = true
		case len(f) == 3 && f[0] == "req" && strings.HasPrefix(f[2], "v"):
			v, err := strconv.ParseUint(f[2][1:], 10, 64)
			if err != nil {
				return err
			}
			if old, ok := reqs[f[1]]; ok && old != v {
				return fmt.Errorf("request %s acknowledged at version %d, earlier at %d", f[1], v, old)
			}
			reqs[f[1]] = v
		case len(f) == 6 && f[0] == "step":
			k := stepAck{target: f[1], command: f[2], reference: f[3] + " " + f[4]}
			if old, ok := steps[k]; ok {
				if old != f[5] {
					return fmt.Errorf("step %+v acknowledged as %s, earlier as %s: executed twice", k, f[5], old)
				}
				run.repeats++
			}
			steps[k] = f[5]
			run.steps++
		default:
			return fmt.Errorf("bad child line %q", line)
		}
		return nil
	}
	killed := false
	for sc.Scan() {
		if err := parse(sc.Text()); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal(err)
		}
		if killAfter > 0 && run.steps == killAfter {
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	// Lines written before the kill are acknowledgements too; a torn last
	// line is not.
	for sc.Scan() {
		if err := parse(sc.Text()); err != nil {
			break
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && killed {
		run.killed = true
	} else if err != nil {
		t.Fatalf("child failed on its own: %v (ctx: %v)", err, ctx.Err())
	}
	return run
}

// TestTransferSurvivesSIGKILL runs the bank in a child process on a Pebble
// store and SIGKILLs it at random points of the transfer saga, 8 to 15
// times, restarting it each time; a last run finishes the work. Then every
// transfer must have ended exactly once (completed, or compensated when the
// destination is closed), every balance must be the opening balance minus
// the completed transfers out plus those in (no double withdrawal,
// deposit or refund), every step's idempotency key must have been used
// once for exactly one event, and the log must verify.
func TestTransferSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(killSeedEnv); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", killSeedEnv, err)
		}
	}
	t.Logf("seed %d (replay the kill points with %s=%d)", seed, killSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x7ea5))

	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		// A hung child ends (and the test fails) before go test's own
		// timeout would kill everything without a word.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
		defer cancel()
	}
	dir := t.TempDir()
	setupKillBank(t, dir)

	reqs := map[string]uint64{}
	steps := map[stepAck]string{}
	repeats := 0
	rounds := 8 + rng.IntN(8)
	for round := range rounds {
		killAfter := 1 + rng.IntN(5)
		var delay time.Duration
		if rng.IntN(3) > 0 {
			delay = time.Duration(rng.IntN(3000)) * time.Microsecond
		}
		run := runChild(ctx, t, exe, dir, killAfter, delay, reqs, steps)
		repeats += run.repeats
		t.Logf("round %d: kill after step line %d + %v: read %d step lines (%d repeated), killed %v, done %v",
			round, killAfter, delay, run.steps, run.repeats, run.killed, run.done)
	}
	run := runChild(ctx, t, exe, dir, 0, 0, reqs, steps)
	if !run.done {
		t.Fatalf("the last, clean run did not finish")
	}
	repeats += run.repeats
	t.Logf("last run: %d step lines (%d repeated); %d distinct steps acknowledged in all, %d re-executions under their keys",
		run.steps, run.repeats, len(steps), repeats)
	verifyKillBank(t, dir, reqs, steps)
}

// setupKillBank opens the accounts in a fresh store in dir.
func setupKillBank(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := pebble.Open(dir, pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	accounts := account.NewAccountRepository(s)
	type cmd struct {
		id string
		c  account.AccountCommand
	}
	var cmds []cmd
	for _, a := range killAccounts {
		cmds = append(cmds, cmd{a, account.OpenAccount{Owner: a}}, cmd{a, account.Deposit{Amount: killOpening, Reference: "opening"}})
	}
	cmds = append(cmds, cmd{killClosed, account.OpenAccount{Owner: "gone"}}, cmd{killClosed, account.CloseAccount{Reason: "test"}})
	for _, c := range cmds {
		if _, err := accounts.Execute(ctx, c.id, c.c); err != nil {
			t.Fatalf("setup %s %T: %v", c.id, c.c, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// accountEvent is a money movement as found in an account stream.
type accountEvent struct {
	version  uint64
	metadata map[string]string
}

// verifyKillBank checks the store in dir after the last run against the
// plan and against what the children acknowledged.
func verifyKillBank(t *testing.T, dir string, reqs map[string]uint64, steps map[stepAck]string) {
	t.Helper()
	ctx := context.Background()
	s, err := pebble.Open(dir, pebble.WithLogger(quietLogger()))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	accounts := account.NewAccountRepository(s)
	sg := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})

	// Every money movement, by account, kind and reference; each must
	// appear at most once.
	moves := map[stepAck]accountEvent{}
	balances := map[string]int64{}
	for _, a := range append(cloneStrings(killAccounts), killClosed) {
		for env, err := range accounts.Events(ctx, a, 0) {
			if err != nil {
				t.Fatal(err)
			}
			var k stepAck
			switch e := env.Event.(type) {
			case account.Deposited:
				k = stepAck{a, "account.Deposit", e.Reference}
				balances[a] += e.Amount
			case account.Withdrawn:
				k = stepAck{a, "account.Withdraw", e.Reference}
				balances[a] -= e.Amount
			default:
				continue
			}
			if old, dup := moves[k]; dup {
				t.Errorf("%s %s %q twice: versions %d and %d", a, k.command, k.reference, old.version, env.Version)
			}
			moves[k] = accountEvent{version: env.Version, metadata: env.Metadata}
		}
	}

	want := map[string]int64{}
	for _, a := range killAccounts {
		want[a] = killOpening
		delete(moves, stepAck{a, "account.Deposit", "opening"})
	}
	// expect finds the movement k made by step (seq, compensation) of
	// transfer p, checks its metadata and the step's idempotency record,
	// and removes it from moves.
	expect := func(p planned, k stepAck, seq uint64, comp bool) accountEvent {
		t.Helper()
		ev, ok := moves[k]
		if !ok {
			t.Errorf("%s: no %s %q on %s", p.id, k.command, k.reference, k.target)
			return ev
		}
		delete(moves, k)
		step := strconv.FormatUint(seq, 10)
		if comp {
			step += "c"
		}
		if ev.metadata[saga.MetadataName] != transfer.TransferSagaName || ev.metadata[saga.MetadataInstance] != p.id ||
			ev.metadata[saga.MetadataStep] != step {
			t.Errorf("%s: %s %q metadata %v, want saga step %s", p.id, k.command, k.reference, ev.metadata, step)
		}
		key := saga.StepKey(transfer.TransferSagaName, p.id, seq, comp)
		rec, err := s.LoadIdempotency(ctx, key)
		switch {
		case err != nil:
			t.Errorf("%s: idempotency key of step %s: %v", p.id, step, err)
		case rec.Stream != (runtime.StreamID{Type: account.AccountStreamType, ID: k.target}) || rec.Version != ev.version:
			t.Errorf("%s: key of step %s recorded %s v%d, the event is %s v%d", p.id, step, rec.Stream, rec.Version, k.target, ev.version)
		}
		if got, ok := steps[k]; ok && got != "v"+strconv.FormatUint(ev.version, 10) {
			t.Errorf("%s: step %s acknowledged as %s, stored at v%d", p.id, step, got, ev.version)
		}
		return ev
	}

	wantKeys := uint64(0)
	for _, p := range killPlan() {
		if v, ok := reqs[p.id]; !ok || v != 1 {
			t.Errorf("%s: request acknowledged at version %d (seen %v), want 1", p.id, v, ok)
		}
		in, err := saga.Load(ctx, s, sg, p.id)
		if err != nil {
			t.Fatal(err)
		}
		withdrawal := stepAck{p.from, "account.Withdraw", "transfer " + p.id}
		deposit := stepAck{p.to, "account.Deposit", "transfer " + p.id}
		refund := stepAck{p.from, "account.Deposit", "refund " + p.id}
		wantStatus, wantRecords := saga.Completed, map[string]int{
			"cqrsgen.saga.reacted": 3, "cqrsgen.saga.step-completed": 2, "cqrsgen.saga.ended": 1}
		wantSteps := []saga.StepStatus{saga.StepCompleted, saga.StepCompleted}
		if p.to == killClosed {
			wantStatus, wantRecords = saga.Compensated, map[string]int{
				"cqrsgen.saga.reacted": 2, "cqrsgen.saga.step-completed": 1, "cqrsgen.saga.step-failed": 1,
				"cqrsgen.saga.compensated": 1, "cqrsgen.saga.ended": 1}
			wantSteps = []saga.StepStatus{saga.StepCompensated, saga.StepFailed}
		}
		if in.Status != wantStatus || len(in.Deadlines) != 0 {
			t.Errorf("%s: %v (%s) with deadlines %v, want %v and none", p.id, in.Status, in.Reason, in.Deadlines, wantStatus)
		}
		var got []saga.StepStatus
		for _, st := range in.Steps {
			got = append(got, st.Status)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantSteps) {
			t.Errorf("%s: steps %v, want %v", p.id, got, wantSteps)
		}
		// The instance stream: each outcome persisted once, one end, last.
		records, last := map[string]int{}, ""
		for rec, err := range s.ReadStream(ctx, runtime.StreamID{Type: saga.StreamPrefix + transfer.TransferSagaName, ID: p.id}, 0) {
			if err != nil {
				t.Fatal(err)
			}
			records[rec.Name]++
			last = rec.Name
		}
		if fmt.Sprint(records) != fmt.Sprint(wantRecords) || last != "cqrsgen.saga.ended" {
			t.Errorf("%s: instance stream holds %v ending with %s, want %v ending with the end", p.id, records, last, wantRecords)
		}

		w := expect(p, withdrawal, 1, false)
		if len(in.Steps) > 0 && p.to != killClosed && in.Steps[0].Version != w.version {
			t.Errorf("%s: withdrawal step recorded v%d, event v%d", p.id, in.Steps[0].Version, w.version)
		}
		if p.to == killClosed {
			r := expect(p, refund, 1, true)
			if len(in.Steps) > 0 && in.Steps[0].Version != r.version {
				t.Errorf("%s: compensated step recorded v%d, refund v%d", p.id, in.Steps[0].Version, r.version)
			}
			if _, err := s.LoadIdempotency(ctx, saga.StepKey(transfer.TransferSagaName, p.id, 2, false)); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("%s: key of the rejected deposit: %v, want ErrNotFound", p.id, err)
			}
			if got := steps[deposit]; got != "rejected" {
				t.Errorf("%s: deposit to the closed account acknowledged as %q, want rejected", p.id, got)
			}
		} else {
			d := expect(p, deposit, 2, false)
			if len(in.Steps) > 1 && in.Steps[1].Version != d.version {
				t.Errorf("%s: deposit step recorded v%d, event v%d", p.id, in.Steps[1].Version, d.version)
			}
			want[p.from] -= p.amount
			want[p.to] += p.amount
		}
		wantKeys += 3 // the request and two saga steps (or a step and its compensation)
	}
	for k, ev := range moves {
		t.Errorf("unexpected %s %q on %s (v%d, metadata %v)", k.command, k.reference, k.target, ev.version, ev.metadata)
	}
	for _, a := range append(cloneStrings(killAccounts), killClosed) {
		acc, _, err := accounts.Load(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance != want[a] || balances[a] != want[a] {
			t.Errorf("%s: balance %d (events sum to %d), want %d", a, acc.Balance, balances[a], want[a])
		}
	}

	// The log: positions 1..head without gaps, counters agree, and the
	// store's own walk finds nothing wrong.
	var n uint64
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; rec.Position != n {
			t.Fatalf("record %d of the log has position %d", n, rec.Position)
		}
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Head != n || stats.Events != n {
		t.Errorf("stats head %d events %d, log holds %d", stats.Head, stats.Events, n)
	}
	if stats.IdempotencyKeys != wantKeys {
		t.Errorf("%d idempotency keys recorded, want %d (each request and step once)", stats.IdempotencyKeys, wantKeys)
	}
	report, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() {
		t.Errorf("verify: %+v", report)
	}
	t.Logf("log: %d events, %d idempotency keys", n, stats.IdempotencyKeys)
}

// cloneStrings returns a copy of s, so appending to it leaves s alone.
func cloneStrings(s []string) []string { return append([]string(nil), s...) }
