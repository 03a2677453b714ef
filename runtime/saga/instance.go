package saga

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Status is the life-cycle state of a saga instance.
type Status int

// Saga instance states. Completed, Compensated and Failed are final: the
// instance ignores later events and deadlines.
const (
	// Running: started, not finished.
	Running Status = iota
	// Compensating: a step failed (or a reaction called Fail) and the
	// completed steps are being compensated, newest first.
	Compensating
	// Completed: a reaction called Complete and every step it and the
	// reactions before it sent succeeded.
	Completed
	// Compensated: the saga failed and every completed step that had a
	// compensation was compensated.
	Compensated
	// Failed: the saga failed and at least one compensation failed too;
	// it needs a person.
	Failed
)

// String returns "running", "compensating", "completed", "compensated" or
// "failed".
func (s Status) String() string {
	switch s {
	case Running:
		return "running"
	case Compensating:
		return "compensating"
	case Completed:
		return "completed"
	case Compensated:
		return "compensated"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("SagaStatus(%d)", int(s))
}

// Final reports whether the status is Completed, Compensated or Failed.
func (s Status) Final() bool { return s >= Completed }

// StepStatus is the state of one step of a saga instance.
type StepStatus int

// Step states.
const (
	// StepPending: sent by a persisted reaction, not executed yet (or
	// skipped for good, when the saga failed before it).
	StepPending StepStatus = iota
	// StepCompleted: the command succeeded.
	StepCompleted
	// StepFailed: the command was rejected (a business-rule error).
	StepFailed
	// StepCompensated: the step completed and its compensation succeeded.
	StepCompensated
	// StepCompensationFailed: the step completed and its compensation was
	// rejected.
	StepCompensationFailed
)

// String returns "pending", "completed", "failed", "compensated" or
// "compensation-failed".
func (s StepStatus) String() string {
	switch s {
	case StepPending:
		return "pending"
	case StepCompleted:
		return "completed"
	case StepFailed:
		return "failed"
	case StepCompensated:
		return "compensated"
	case StepCompensationFailed:
		return "compensation-failed"
	}
	return fmt.Sprintf("StepStatus(%d)", int(s))
}

// Step is one command a saga instance sent, as persisted.
type Step struct {
	// Seq numbers the instance's steps from 1; it is part of the step's
	// idempotency key (StepKey).
	Seq uint64
	// Target is the id of the aggregate the command went to; Command is
	// the command's Go type (for people).
	Target, Command string
	// Compensable reports that the step has a compensation, sent to
	// CompensationTarget as a CompensationCommand.
	Compensable                             bool
	CompensationTarget, CompensationCommand string
	// Status is the step's state; Version the aggregate version its
	// command (or compensation) resulted in; Error the rejection, if any.
	Status  StepStatus
	Version uint64
	Error   string
	// Tries is how many times the last executed command (the step's, or
	// its compensation's) was tried in the run that recorded its outcome.
	Tries int
	// Trigger describes the event or deadline whose reaction sent it.
	Trigger string

	reaction int // index into sagaInstance.reactions
}

// Deadline is a deadline of a saga instance: Name fires once At has
// passed on the saga's clock, unless cancelled or re-set first.
type Deadline struct {
	// Instance is the saga instance's id.
	Instance string
	Name     string
	At       time.Time
}

// Instance is a saga instance as persisted, for inspection (Load).
type Instance[S any] struct {
	// ID is the instance id (the correlation id); Version the version of
	// its stream.
	ID      string
	Version uint64
	// State is the saga state after the last reaction.
	State *S
	// Status is the instance's life-cycle state and Reason why it failed,
	// if it did.
	Status Status
	Reason string
	// Steps are the steps in order; Deadlines the pending deadlines,
	// earliest first.
	Steps     []Step
	Deadlines []Deadline
	// Reactions counts the persisted reactions.
	Reactions int
}

// sagaInstance is the fold of one instance stream.
type sagaInstance struct {
	id        string
	version   uint64
	state     storedState // latest state, no data before the first reaction
	lastPos   uint64      // highest log position reacted to
	reactions []*reactedRec
	states    []storedState // state before each reaction
	steps     []Step
	deadlines map[string]time.Time
	complete  bool
	failed    bool // a reaction called Fail or a step failed
	reason    string
	ended     bool
	status    Status
}

// storedState is an encoded saga state and where it is stored.
type storedState struct {
	data   []byte // nil: the zero state (before the first reaction)
	schema uint32 // the schema version data was encoded with
	at     uint64 // the instance stream version of the reaction that stored it
}

func newSagaInstance(id string) *sagaInstance {
	return &sagaInstance{id: id, deadlines: map[string]time.Time{}}
}

// apply folds one record of the instance stream.
func (in *sagaInstance) apply(rec runtime.Record) error {
	var err error
	switch rec.Name {
	case sagaReacted:
		var r *reactedRec
		if r, err = decodeReacted(rec.Data); err == nil {
			err = in.applyReacted(r, rec.Version)
		}
	case sagaStepCompleted, sagaStepFailed, sagaCompensated, sagaCompensationFailed:
		var o outcomeRec
		if o, err = decodeOutcome(rec.Data); err == nil {
			err = in.applyOutcome(rec.Name, o)
		}
	case sagaEnded:
		var e endedRec
		if e, err = decodeEnded(rec.Data); err == nil {
			in.ended, in.status = true, e.Status
			if e.Reason != "" {
				in.reason = e.Reason
			}
			clear(in.deadlines)
		}
	default:
		err = &runtime.UnknownEventError{Name: rec.Name, Schema: rec.Schema}
	}
	if err != nil {
		return &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "saga record " + rec.Name, Err: err}
	}
	in.version = rec.Version
	return nil
}

// applyReacted folds reaction r, stored at version at of the stream.
func (in *sagaInstance) applyReacted(r *reactedRec, at uint64) error {
	if r.FirstSeq != uint64(len(in.steps))+1 {
		return fmt.Errorf("reaction numbers its steps from %d, want %d", r.FirstSeq, len(in.steps)+1)
	}
	idx := len(in.reactions)
	in.states = append(in.states, in.state)
	in.reactions = append(in.reactions, r)
	in.state = storedState{data: r.State, schema: r.StateSchema, at: at}
	if r.Trigger.Position > in.lastPos {
		in.lastPos = r.Trigger.Position
	}
	if r.Trigger.Deadline != "" {
		delete(in.deadlines, r.Trigger.Deadline)
	}
	for _, n := range r.Cancelled {
		delete(in.deadlines, n)
	}
	for _, d := range r.Set {
		in.deadlines[d.Name] = d.At
	}
	for i, s := range r.Steps {
		in.steps = append(in.steps, Step{
			Seq: r.FirstSeq + uint64(i), Target: s.Target, Command: s.Command,
			Compensable: s.Compensable, CompensationTarget: s.CompTarget, CompensationCommand: s.CompCommand,
			Trigger: r.Trigger.String(), reaction: idx,
		})
	}
	if r.Complete {
		in.complete = true
	}
	if r.Fail != "" && !in.failed {
		in.failed, in.reason = true, r.Fail
	}
	return nil
}

func (in *sagaInstance) applyOutcome(name string, o outcomeRec) error {
	if o.Seq == 0 || o.Seq > uint64(len(in.steps)) {
		return fmt.Errorf("outcome of unknown step %d", o.Seq)
	}
	s := &in.steps[o.Seq-1]
	s.Version, s.Error, s.Tries = o.Version, o.Error, o.Tries
	switch name {
	case sagaStepCompleted:
		s.Status = StepCompleted
	case sagaStepFailed:
		s.Status = StepFailed
		if !in.failed {
			in.failed = true
			in.reason = fmt.Sprintf("step %d (%s to %q) failed: %s", s.Seq, s.Command, s.Target, o.Error)
		}
	case sagaCompensated:
		s.Status = StepCompensated
	case sagaCompensationFailed:
		s.Status = StepCompensationFailed
	}
	return nil
}

// currentStatus is the instance's status as Instance reports it.
func (in *sagaInstance) currentStatus() Status {
	switch {
	case in.ended:
		return in.status
	case in.failed:
		return Compensating
	}
	return Running
}

// sagaAction is the next thing a resumed instance must do.
type sagaAction int

const (
	actNone sagaAction = iota
	actStep
	actCompensate
	actEnd
)

// next returns the instance's next action: run its first pending step;
// compensate its newest completed, compensable step; or end it.
func (in *sagaInstance) next() (sagaAction, *Step, endedRec) {
	if in.ended {
		return actNone, nil, endedRec{}
	}
	if !in.failed {
		for i := range in.steps {
			if in.steps[i].Status == StepPending {
				return actStep, &in.steps[i], endedRec{}
			}
		}
		if in.complete {
			return actEnd, nil, endedRec{Status: Completed}
		}
		return actNone, nil, endedRec{}
	}
	compFailed := false
	for i := len(in.steps) - 1; i >= 0; i-- {
		s := &in.steps[i]
		if s.Status == StepCompleted && s.Compensable {
			return actCompensate, s, endedRec{}
		}
		if s.Status == StepCompensationFailed {
			compFailed = true
		}
	}
	if compFailed {
		return actEnd, nil, endedRec{Status: Failed, Reason: in.reason}
	}
	return actEnd, nil, endedRec{Status: Compensated, Reason: in.reason}
}

// sagaStream is the stream of instance id of the saga named name.
func sagaStream(name, id string) runtime.StreamID {
	return runtime.StreamID{Type: StreamPrefix + name, ID: id}
}

// loadInstance reads and folds instance id.
func loadInstance(ctx context.Context, store runtime.Store, name, id string) (*sagaInstance, error) {
	in := newSagaInstance(id)
	for rec, err := range store.ReadStream(ctx, sagaStream(name, id), 0) {
		if err != nil {
			return nil, err
		}
		if err := in.apply(rec); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Load returns instance id of saga as persisted in store: its state,
// status, steps and pending deadlines. An instance that was never started
// is returned with Version 0, the zero state and status Running.
func Load[S any](ctx context.Context, store runtime.Store, saga *Saga[S], id string) (*Instance[S], error) {
	if err := saga.validate(); err != nil {
		return nil, err
	}
	if err := runtime.ValidateStream(sagaStream(saga.Name, id)); err != nil {
		return nil, err
	}
	in, err := loadInstance(ctx, store, saga.Name, id)
	if err != nil {
		return nil, err
	}
	state, err := saga.state(in, in.state)
	if err != nil {
		return nil, err
	}
	out := &Instance[S]{ID: id, Version: in.version, State: state, Status: in.currentStatus(),
		Reason: in.reason, Steps: slices.Clone(in.steps), Reactions: len(in.reactions)}
	for _, n := range slices.Sorted(maps.Keys(in.deadlines)) {
		out.Deadlines = append(out.Deadlines, Deadline{Instance: id, Name: n, At: in.deadlines[n]})
	}
	slices.SortStableFunc(out.Deadlines, func(a, b Deadline) int { return a.At.Compare(b.At) })
	return out, nil
}

// state decodes a stored state of instance in: the zero state when there
// is none, DecodeState when it has the saga's StateVersion, UpcastState
// when it is older. A state that cannot be decoded is a *runtime.DecodeError
// naming the reaction record that stored it.
func (s *Saga[S]) state(in *sagaInstance, st storedState) (*S, error) {
	out := new(S)
	if st.data == nil {
		return out, nil
	}
	var err error
	switch cur := s.stateVersion(); {
	case st.schema == cur:
		err = s.DecodeState(st.data, out)
	case st.schema < cur && s.UpcastState != nil:
		err = s.UpcastState(st.schema, st.data, out)
	default:
		err = &StateVersionError{Saga: s.Name, Stored: st.schema, Current: cur}
	}
	if err != nil {
		return nil, &runtime.DecodeError{Stream: sagaStream(s.Name, in.id), Version: st.at,
			What: fmt.Sprintf("saga state (schema version %d)", st.schema), Err: err}
	}
	return out, nil
}

// stateVersion is the schema version the saga writes its state with.
func (s *Saga[S]) stateVersion() uint32 { return max(s.StateVersion, 1) }

// StateVersionError is the cause inside a *runtime.DecodeError when a saga
// instance's state was stored under a schema version this build cannot
// read: an older one with no upcaster (Saga.UpcastState), or a newer one
// (written by a newer build).
type StateVersionError struct {
	Saga string
	// Stored is the state's schema version; Current the saga's
	// StateVersion.
	Stored, Current uint32
}

func (e *StateVersionError) Error() string {
	if e.Stored > e.Current {
		return fmt.Sprintf("saga %q state has schema version %d, newer than this build's %d", e.Saga, e.Stored, e.Current)
	}
	return fmt.Sprintf("saga %q state has schema version %d and this build reads version %d with no upcaster from %d: add a //cqrs:upcast returning the saga type",
		e.Saga, e.Stored, e.Current, e.Stored)
}

// errNotDeterministic reports a replayed reaction that did not send the
// steps it sent when it was first handled.
var errNotDeterministic = errors.New("cqrsgen: saga reaction is not deterministic")
