package saga_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// A member aggregate and a welcome saga, written by hand in the shape
// cqrsgen generates from //cqrs:aggregate and //cqrs:saga types: each
// joining member gets a bonus, taken back unless the member verifies
// within a day.

type member struct {
	Joined bool
	Bonus  int
}

type memberEvent interface{ isMemberEvent() int }

type (
	joined   struct{}
	credited struct{ Amount int }
	verified struct{}
)

func (joined) isMemberEvent() int   { return 0 }
func (credited) isMemberEvent() int { return 1 }
func (verified) isMemberEvent() int { return 2 }

type memberCommand interface{ isMemberCommand() int }

type (
	join   struct{}
	credit struct{ Amount int }
	verify struct{}
)

func (join) isMemberCommand() int   { return 0 }
func (credit) isMemberCommand() int { return 1 }
func (verify) isMemberCommand() int { return 2 }

func (m *member) applyJoined(joined)       { m.Joined = true }
func (m *member) applyCredited(e credited) { m.Bonus += e.Amount }
func (m *member) applyVerified(verified)   {}

func (m *member) handleJoin(join) ([]memberEvent, error) { return []memberEvent{joined{}}, nil }
func (m *member) handleCredit(c credit) ([]memberEvent, error) {
	return []memberEvent{credited(c)}, nil
}
func (m *member) handleVerify(verify) ([]memberEvent, error) { return []memberEvent{verified{}}, nil }

func empty[E any](E) ([]byte, error)        { return nil, nil }
func none[E any]([]byte) (e E, err error)   { return e, nil }
func itoa(e credited) ([]byte, error)       { return strconv.AppendInt(nil, int64(e.Amount), 10), nil }
func atoi(b []byte) (e credited, err error) { e.Amount, err = strconv.Atoi(string(b)); return e, err }

var (
	memberEvents = registry.NewEvents("member", memberEvent.isMemberEvent,
		registry.Event[memberEvent]("joined", 1, (*member).applyJoined, empty[joined], none[joined]),
		registry.Event[memberEvent]("credited", 1, (*member).applyCredited, itoa, atoi),
		registry.Event[memberEvent]("verified", 1, (*member).applyVerified, empty[verified], none[verified]))
	memberCommands = registry.NewCommands(memberCommand.isMemberCommand,
		registry.Command[memberCommand]((*member).handleJoin),
		registry.Command[memberCommand]((*member).handleCredit),
		registry.Command[memberCommand]((*member).handleVerify))
	members = &runtime.Aggregate[member, memberEvent, memberCommand]{
		Type: "member", Events: memberEvents, Decide: memberCommands.Decide}
)

// welcome is the saga's state; its methods are what a user writes.
type welcome struct{ Verified bool }

// Both events belong to the instance named by the member's id.
func (*welcome) correlateJoined(e runtime.Envelope[joined]) (string, bool)     { return e.ID, true }
func (*welcome) correlateVerified(e runtime.Envelope[verified]) (string, bool) { return e.ID, true }

func (w *welcome) onJoined(_ context.Context, e runtime.Envelope[joined], do *saga.Actions) error {
	do.Send(e.ID, credit{Amount: 10}).Compensate(e.ID, credit{Amount: -10})
	do.Deadline("verify", 24*time.Hour)
	return nil
}

func (w *welcome) onVerified(context.Context, runtime.Envelope[verified], *saga.Actions) error {
	w.Verified = true
	return nil
}

var errUnverified = errors.New("not verified in time")

func (w *welcome) onDeadline(_ context.Context, d saga.Deadline, do *saga.Actions) error {
	if w.Verified {
		do.Complete()
	} else {
		do.Fail(errUnverified)
	}
	return nil
}

// newWelcomeSaga is what cqrsgen generates as New<S>Saga.
func newWelcomeSaga(repo *runtime.Repository[member, memberEvent, memberCommand]) *saga.Saga[welcome] {
	r := saga.NewReactions(
		saga.React(memberEvents, (*welcome).correlateJoined, (*welcome).onJoined),
		saga.React(memberEvents, (*welcome).correlateVerified, (*welcome).onVerified))
	return &saga.Saga[welcome]{
		Name: "welcome", Events: r.Names(), Correlate: r.Correlate,
		Deadline: func(ctx context.Context, w *welcome, d saga.Deadline, do *saga.Actions) error {
			return w.onDeadline(ctx, d, do)
		},
		Execute: func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
			if c, ok := c.(memberCommand); ok {
				return repo.Execute(ctx, id, c, opts...)
			}
			return 0, fmt.Errorf("%w: welcome does not route %T", runtime.ErrInvalid, c)
		},
		EncodeState: func(w *welcome) ([]byte, error) { return strconv.AppendBool(nil, w.Verified), nil },
		DecodeState: func(b []byte, w *welcome) (err error) { w.Verified, err = strconv.ParseBool(string(b)); return err },
	}
}

// stepDone reports that an instance's first step has completed.
func stepDone(in *saga.Instance[welcome]) bool {
	return len(in.Steps) == 1 && in.Steps[0].Status == saga.StepCompleted
}

// Run drives each instance from the log: a reaction's steps (Actions.Send)
// run as commands, its deadlines fire on the saga's clock (a ManualClock
// here), and a failed saga compensates its completed steps. WaitFor waits
// until an instance, as persisted, gets where the caller needs it.
func ExampleRun() {
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	repo := runtime.NewRepository(store, members)
	sg := newWelcomeSaga(repo)
	clock := saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, store, sg, saga.WithClock(clock)) }()

	for _, id := range []string{"ann", "bob"} {
		repo.Execute(ctx, id, join{})
		saga.WaitFor(ctx, store, sg, id, stepDone)
	}
	repo.Execute(ctx, "ann", verify{})
	saga.WaitFor(ctx, store, sg, "ann", func(in *saga.Instance[welcome]) bool { return in.State.Verified })
	clock.Advance(25 * time.Hour) // both deadlines fall due

	for _, id := range []string{"ann", "bob"} {
		in, _ := saga.WaitFor(ctx, store, sg, id, nil) // nil: until its status is final
		m, _, _ := repo.Load(ctx, id)
		fmt.Printf("%s: %s, step 1 %s, bonus %d, reason %q\n", id, in.Status, in.Steps[0].Status, m.Bonus, in.Reason)
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// ann: completed, step 1 completed, bonus 10, reason ""
	// bob: compensated, step 1 compensated, bonus 0, reason "not verified in time"
	// stopped: <nil>
}

// Load reads an instance as persisted: its state, status, steps (with
// their compensations) and pending deadlines. An instance never started
// is returned at version 0, running.
func ExampleLoad() {
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	repo := runtime.NewRepository(store, members)
	sg := newWelcomeSaga(repo)
	clock := saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, store, sg, saga.WithClock(clock)) }()

	repo.Execute(ctx, "cat", join{})
	in, _ := saga.WaitFor(ctx, store, sg, "cat", stepDone)
	cancel()
	<-done
	fmt.Println(in.ID, in.Status, "reactions:", in.Reactions)
	for _, s := range in.Steps {
		fmt.Println("step", s.Seq, s.Command, "to", s.Target, s.Status, "undo:", s.CompensationCommand)
	}
	for _, d := range in.Deadlines {
		fmt.Println("deadline", d.Name, "at", d.At.Format(time.DateTime))
	}

	never, _ := saga.Load(context.Background(), store, sg, "dan")
	fmt.Println(never.ID, never.Status, "version", never.Version)
	// Output:
	// cat running reactions: 1
	// step 1 saga_test.credit to cat completed undo: saga_test.credit
	// deadline verify at 2030-01-02 00:00:00
	// dan running version 0
}

// WaitFor waits until an instance, as persisted, satisfies a condition
// (nil: a final status), sleeping in the store's Wait between changes. A
// handler bounds it with a timeout and, when it runs out, gets the error
// and the instance as it last saw it.
func ExampleWaitFor() {
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	repo := runtime.NewRepository(store, members)
	sg := newWelcomeSaga(repo)
	clock := saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, store, sg, saga.WithClock(clock)) }()

	repo.Execute(ctx, "eve", join{})
	in, err := saga.WaitFor(ctx, store, sg, "eve", stepDone)
	fmt.Println(in.Status, in.Steps[0].Status, err)

	// The clock never reaches the deadline: eve's instance never ends.
	short, stop := context.WithTimeout(ctx, 10*time.Millisecond)
	in, err = saga.WaitFor(short, store, sg, "eve", nil)
	stop()
	fmt.Println(in.Status, errors.Is(err, context.DeadlineExceeded))
	cancel()
	<-done
	// Output:
	// running completed <nil>
	// running true
}
