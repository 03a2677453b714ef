package saga_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// commandRecorder records what CommandMetrics receives.
type commandRecorder struct {
	mu       sync.Mutex
	commands []telemetry.CommandCall
	steps    []saga.StepCall
}

func (c *commandRecorder) ObserveCall(instrument.Call) {}
func (c *commandRecorder) ObserveCommand(call telemetry.CommandCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commands = append(c.commands, call)
}
func (c *commandRecorder) ObserveSagaStep(s saga.StepCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, s)
}

// conflictOnce fails the next append of wallet "a" with a conflict, as a
// writer in another process would.
type conflictOnce struct {
	runtime.Store
	mu   sync.Mutex
	left int
}

func (s *conflictOnce) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	s.mu.Lock()
	fail := s.left > 0 && req.Stream.ID == "a"
	if fail {
		s.left--
	}
	s.mu.Unlock()
	if fail {
		return runtime.AppendResult{}, &runtime.ConflictError{Stream: req.Stream, Expected: req.Expected, Actual: req.Expected + 1}
	}
	return s.Store.Append(ctx, req)
}

func (s *conflictOnce) Unwrap() runtime.Store { return s.Store }

func TestCommandMetrics(t *testing.T) {
	m := &commandRecorder{}
	flaky := &conflictOnce{Store: memory.New()}
	store := instrument.New(flaky, m)
	defer store.Close()
	f := newFixture(t, store)
	m.commands = nil // the fixture's own commands

	ctx := context.Background()
	flaky.left = 1
	steps := []struct {
		do      func() error
		outcome telemetry.CommandOutcome
		retries int
	}{
		{func() error { _, err := f.repo.Execute(ctx, "a", walletCmd{Op: "credit", Amount: 1}); return err }, telemetry.CommandOK, 1},
		{func() error { _, err := f.repo.Execute(ctx, "c", walletCmd{Op: "credit", Amount: 1}); return err }, telemetry.CommandRejected, 0},
		{func() error {
			_, err := f.repo.Execute(ctx, "b", walletCmd{Op: "credit", Amount: 1}, runtime.IdempotencyKey("k"))
			return err
		}, telemetry.CommandOK, 0},
		{func() error {
			_, err := f.repo.Execute(ctx, "b", walletCmd{Op: "credit", Amount: 1}, runtime.IdempotencyKey("k"))
			return err
		}, telemetry.CommandDuplicate, 0},
		{func() error {
			flaky.left = runtime.DefaultRetries + 1
			_, err := f.repo.Execute(ctx, "a", walletCmd{Op: "credit", Amount: 1})
			if !errors.Is(err, runtime.ErrConflict) {
				return errors.New("no conflict")
			}
			return nil
		}, telemetry.CommandConflict, runtime.DefaultRetries},
	}
	for i, s := range steps {
		err := s.do()
		if s.outcome != telemetry.CommandRejected && err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		got := m.commands[len(m.commands)-1]
		if got.StreamType != "wallet" || got.Outcome != s.outcome || got.Retries != s.retries {
			t.Errorf("command %d: %+v, want outcome %s retries %d", i, got, s.outcome, s.retries)
		}
	}
	if len(m.commands) != len(steps) {
		t.Errorf("%d commands observed, want %d", len(m.commands), len(steps))
	}

	// A transfer to the closed wallet: the debit completes, the credit
	// fails, the refund (a compensation) completes.
	sg := newTransferSaga(f.repo, transferOptions{})
	f.run(t, store, sg)
	requestTransfer(t, store, "t1", "a", "c", 5)
	waitSaga(t, store, sg, "t1", final)
	m.mu.Lock()
	defer m.mu.Unlock()
	want := []saga.StepCall{
		{Saga: sagaName, Outcome: saga.OutcomeCompleted, Tries: 1},
		{Saga: sagaName, Outcome: saga.OutcomeFailed, Tries: 1},
		{Saga: sagaName, Compensation: true, Outcome: saga.OutcomeCompleted, Tries: 1},
	}
	if len(m.steps) != len(want) {
		t.Fatalf("saga steps %+v, want %+v", m.steps, want)
	}
	for i := range want {
		if m.steps[i] != want[i] {
			t.Errorf("saga step %d: %+v, want %+v", i, m.steps[i], want[i])
		}
	}
}
