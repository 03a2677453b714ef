package saga

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/keyed"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// StreamPrefix starts the stream type of every saga instance stream:
// instance id of the saga named N is the stream ("cqrsgen.saga." + N, id).
// Saga deadline indexes live in streams of type DeadlinesPrefix + N.
const (
	StreamPrefix    = "cqrsgen.saga."
	DeadlinesPrefix = "cqrsgen.saga-deadlines."
)

// Metadata keys the runtime attaches to every event a saga's command
// appends, so that reactions can correlate the results of their own steps
// (see SentBy).
const (
	MetadataName     = "cqrsgen.saga"
	MetadataInstance = "cqrsgen.saga.instance"
	MetadataStep     = "cqrsgen.saga.step"
)

// Saga describes a saga (a process manager) to the runtime: how it
// correlates events of any aggregates to its instances, how an instance
// reacts to them and to its deadlines, how its commands reach their
// repositories, and how its state is encoded. cqrsgen emits one per
// //cqrs:saga type (New<S>Saga); it can also be written by hand. All fields
// are plain values and functions, so the generated code stays
// reflection-free.
//
// # How an instance runs
//
// Each instance is an event stream of its own (StreamPrefix + Name,
// instance id) that only the runtime writes. Reacting to an event or a
// deadline is two-phase:
//
//  1. The reaction is decided and persisted: the instance is loaded, the
//     user's reaction runs on a copy of its state and records what to do in
//     a Actions (steps to send, compensations, deadlines, Complete,
//     Fail). The new state and that plan are appended as one
//     "cqrsgen.saga.reacted" record, expecting the version loaded, so two
//     runners never both decide for one instance (optimistic concurrency).
//  2. The plan is carried out: each pending step's command is executed with
//     an idempotency key derived from the saga, the instance and the step's
//     number (StepKey), and its outcome is appended
//     ("step-completed"/"step-failed"). A rejected step, or Fail, turns
//     the instance to compensating: the compensations of the completed
//     steps are executed newest first, each keyed and persisted
//     ("compensated"/"compensation-failed"), and the instance ends
//     ("ended": completed, compensated or failed).
//
// A crash anywhere is resumed from the stream: the next runner (the log
// replays the trigger from the checkpoint, or the deadline is still due)
// finds the reaction persisted and carries out what is left; a command
// whose execution was not yet recorded runs again under the same key, and
// the repository returns its first result instead of executing it twice.
//
// Commands are not serialised: to re-issue a step after a restart (or a
// compensation, which runs long after its reaction) the runtime replays the
// reaction that sent it, with the state it had then and the same trigger
// event. Reactions must therefore be deterministic functions of the state
// and the event (or deadline): no clocks (use Actions.Now), no random
// ids, no reads of other state. A replay that sends other steps fails with
// an error instead of executing something else.
type Saga[S any] struct {
	// Name is the saga's stable name: it names the instance streams, the
	// checkpoint ("cqrsgen.saga." + Name) and the idempotency keys, so it
	// must never change once instances exist.
	Name string
	// Events lists the wire names the saga reacts to (current and former
	// names of each event it has an On<Event> for). Other records are
	// skipped without decoding.
	Events []string
	// Correlate decodes rec and returns the instance it belongs to and the
	// reaction to run, or ok=false when it belongs to none. A decoding
	// failure is an error (generated code returns a *runtime.DecodeError).
	Correlate func(rec runtime.Record) (instance string, react func(ctx context.Context, state *S, do *Actions) error, ok bool, err error)
	// Deadline reacts to a deadline of the instance. Nil means a deadline
	// fails the saga (its completed steps are compensated).
	Deadline func(ctx context.Context, state *S, d Deadline, do *Actions) error
	// Execute executes command c against aggregate id with opts (the
	// step's idempotency key and metadata) and returns the new version.
	// Generated code switches on the command's type to the repository of
	// its aggregate; a type it does not route is an error matching
	// runtime.ErrInvalid.
	Execute func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error)
	// EncodeState and DecodeState encode the saga's state, at schema
	// version StateVersion.
	EncodeState func(state *S) ([]byte, error)
	DecodeState func(data []byte, state *S) error
	// StateVersion is the schema version of the state EncodeState writes
	// (//cqrs:saga version=N; 0 means 1). It is stored with every state,
	// so that a state written under an older version is read through
	// UpcastState rather than misread by DecodeState.
	StateVersion uint32
	// UpcastState decodes a state stored under an older schema version
	// into the current S (generated from the //cqrs:upcast funcs that
	// lead to S). Nil when there are none: an instance whose state is
	// older then fails to load with a *runtime.DecodeError wrapping a
	// *StateVersionError.
	UpcastState func(version uint32, data []byte, state *S) error
}

func (s *Saga[S]) validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil saga", runtime.ErrInvalid)
	}
	if err := runtime.ValidateKey("saga name", s.Name); err != nil {
		return err
	}
	if len(DeadlinesPrefix+s.Name) > runtime.MaxTypeLength {
		return fmt.Errorf("%w: saga name is %d bytes, limit %d", runtime.ErrTooLarge, len(s.Name), runtime.MaxTypeLength-len(DeadlinesPrefix))
	}
	switch {
	case s.Correlate == nil:
		return fmt.Errorf("%w: saga %q has no Correlate function", runtime.ErrInvalid, s.Name)
	case s.Execute == nil:
		return fmt.Errorf("%w: saga %q has no Execute function", runtime.ErrInvalid, s.Name)
	case s.EncodeState == nil || s.DecodeState == nil:
		return fmt.Errorf("%w: saga %q has no state codec", runtime.ErrInvalid, s.Name)
	}
	return nil
}

// Actions records what a reaction decides. A reaction gets a fresh one
// and must only use it during the call; nothing happens until the reaction
// returns nil and its decision is persisted.
type Actions struct {
	instance  string
	now       time.Time
	steps     []*Send
	set       []Deadline
	cancelled []string
	complete  bool
	fail      string
}

// Send is a step a reaction sent; Compensate attaches its
// compensation.
type Send struct {
	id      string
	command any
	comp    *Send
}

// Instance returns the id of the saga instance reacting.
func (do *Actions) Instance() string { return do.instance }

// Now returns the saga clock's time when the reaction started. Reactions
// must use it instead of time.Now, to stay deterministic.
func (do *Actions) Now() time.Time { return do.now }

// Send sends command c to the aggregate with id id, as the instance's next
// step. Steps run in the order sent, after the reaction is persisted, each
// with its own idempotency key; the command's type must be a command of an
// aggregate the saga routes (generated code checks this when it is
// generated). A step rejected by its aggregate fails the saga.
func (do *Actions) Send(id string, c any) *Send {
	s := &Send{id: id, command: c}
	do.steps = append(do.steps, s)
	return s
}

// Compensate sets the command that undoes the step, sent to aggregate id
// if the saga fails after the step completed. Compensations run newest
// step first.
func (s *Send) Compensate(id string, c any) {
	s.comp = &Send{id: id, command: c}
}

// Deadline sets (or re-sets) the instance's deadline name to fire once d
// has passed on the saga clock. It is persisted with the reaction, so it
// fires after a restart too; a deadline reaction (the saga's OnDeadline)
// then runs with it. Final instances drop their deadlines.
func (do *Actions) Deadline(name string, d time.Duration) {
	do.DeadlineAt(name, do.now.Add(d))
}

// DeadlineAt is Deadline with an absolute time.
func (do *Actions) DeadlineAt(name string, at time.Time) {
	do.set = append(do.set, Deadline{Instance: do.instance, Name: name, At: at.UTC()})
}

// CancelDeadline cancels the instance's deadline name, if set.
func (do *Actions) CancelDeadline(name string) {
	do.cancelled = append(do.cancelled, name)
	kept := do.set[:0]
	for _, d := range do.set {
		if d.Name != name {
			kept = append(kept, d)
		}
	}
	do.set = kept
}

// Complete ends the saga successfully once every step sent so far (by this
// and earlier reactions) has completed.
func (do *Actions) Complete() { do.complete = true }

// Fail fails the saga: steps not yet executed are skipped, and the
// completed steps are compensated, newest first. reason is persisted.
func (do *Actions) Fail(reason error) {
	if reason == nil {
		reason = errors.New("failed")
	}
	do.fail = reason.Error()
}

func (do *Actions) empty() bool {
	return len(do.steps) == 0 && len(do.set) == 0 && len(do.cancelled) == 0 && !do.complete && do.fail == ""
}

// SentBy returns the saga instance whose step appended an event with
// metadata md, when that was a step (or compensation) of the saga named
// saga. Correlation rules use it to map the results of their own commands
// back to the instance.
func SentBy(md map[string]string, saga string) (instance string, ok bool) {
	if md[MetadataName] != saga {
		return "", false
	}
	instance, ok = md[MetadataInstance]
	return instance, ok && instance != ""
}

// StepKey returns the idempotency key of step seq of instance id of the
// saga named saga; compensation selects the key of the step's
// compensation. Keys are injective in (saga, id, seq, compensation) and at
// most runtime.MaxIDLength bytes: an instance id too long to fit is replaced by its
// SHA-256.
func StepKey(saga, id string, seq uint64, compensation bool) string {
	kind := "s"
	if compensation {
		kind = "c"
	}
	prefix := "cqrsgen.saga:" + strconv.Itoa(len(saga)) + ":" + saga + ":"
	suffix := ":" + kind + strconv.FormatUint(seq, 10)
	if k := prefix + "i" + id + suffix; len(k) <= runtime.MaxIDLength {
		return k
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + "h" + hex.EncodeToString(sum[:]) + suffix
}

// ErrorClass says how a saga treats an error from a step's command.
type ErrorClass int

// Error classes.
const (
	// Business: the aggregate rejected the command (an error from its
	// Handle method). The step fails, without retries, and the saga is
	// compensated.
	Business ErrorClass = iota
	// Transient: the command may succeed if tried again (a version
	// conflict that outlived the repository's own retries, a timeout, a
	// temporary network error, or an error wrapped with Transient). It is
	// retried with back-off; when the attempts are used up the runner
	// stops with the error, and the step is tried again when it resumes.
	Transient
	// Fatal: the store or the runner cannot go on (closed store, corrupt
	// data, invalid input such as a command the saga does not route, or the
	// runner's context ending). Nothing is recorded for the step and the
	// runner stops; the step is tried again when it resumes.
	Fatal
)

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// MarkTransient wraps err so that sagas retry it (ErrorClass Transient).
// Handle methods do not need it; it is for repositories or stores wrapped
// by the user whose errors are worth retrying.
func MarkTransient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

// ClassifyError is the default classification of a step's error:
// runtime.ErrClosed, runtime.ErrCorrupt, runtime.ErrInvalid, runtime.ErrTooLarge and context.Canceled are
// Fatal; runtime.ErrConflict, runtime.ErrUnavailable, context.DeadlineExceeded,
// MarkTransient errors and net.Error timeouts are Transient; everything else, in particular every
// error a Handle method returns, is a Business rejection.
func ClassifyError(err error) ErrorClass {
	var te *transientError
	var ne net.Error
	switch {
	case errors.As(err, &te), errors.Is(err, runtime.ErrConflict), errors.Is(err, runtime.ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Transient
	case errors.Is(err, runtime.ErrClosed), errors.Is(err, runtime.ErrCorrupt), errors.Is(err, runtime.ErrInvalid),
		errors.Is(err, runtime.ErrTooLarge), errors.Is(err, context.Canceled):
		return Fatal
	}
	return Business
}

// Defaults of the saga options.
const (
	// DefaultAttempts is how many times a step's command is tried when
	// it fails with a transient error.
	DefaultAttempts = 5
	// DefaultRetryDelay is the first back-off; it doubles each time up
	// to projection.MaxHandlerRetryDelay.
	DefaultRetryDelay = 50 * time.Millisecond
	// DefaultPollInterval is how often the deadline loop looks for
	// deadlines set by other processes.
	DefaultPollInterval = time.Second
)

// Option configures Run.
type Option func(*sagaConfig)

type sagaConfig struct {
	clock      Clock
	attempts   int
	retryDelay time.Duration
	classify   func(error) ErrorClass
	poll       time.Duration
	projection []projection.Option
}

// WithClock sets the clock of deadlines and Actions.Now (default: the
// system clock). Tests pass a *ManualClock.
func WithClock(c Clock) Option {
	return func(cfg *sagaConfig) {
		if c != nil {
			cfg.clock = c
		}
	}
}

// Retry sets how a step failing with a transient error is retried: up
// to attempts tries in all (≤ 1: no retries), waiting base before the
// second and doubling each time (real time, not the saga clock).
func Retry(attempts int, base time.Duration) Option {
	return func(cfg *sagaConfig) { cfg.attempts, cfg.retryDelay = max(attempts, 1), max(base, 0) }
}

// Classify replaces ClassifyError.
func Classify(f func(error) ErrorClass) Option {
	return func(cfg *sagaConfig) {
		if f != nil {
			cfg.classify = f
		}
	}
}

// PollInterval sets how often (on the saga clock) the deadline loop
// reads deadlines that other processes set (default
// DefaultPollInterval). Deadlines set in this process wake it at once.
func PollInterval(d time.Duration) Option {
	return func(cfg *sagaConfig) {
		if d > 0 {
			cfg.poll = d
		}
	}
}

// Projection passes options to the projection that feeds the saga
// from the log (projection.CheckpointEvery, projection.HandlerRetry).
func Projection(opts ...projection.Option) Option {
	return func(cfg *sagaConfig) { cfg.projection = append(cfg.projection, opts...) }
}

// Error reports why a saga runner stopped while driving an instance.
// Unwrap returns the cause.
type Error struct {
	Saga, Instance string
	// Trigger describes the event or deadline being handled.
	Trigger string
	// Seq is the step being executed, 0 if none.
	Seq uint64
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("cqrsgen: saga %q instance %q (%s)", e.Saga, e.Instance, e.Trigger)
	if e.Seq != 0 {
		s += fmt.Sprintf(" step %d", e.Seq)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// sagaRunner drives the instances of one saga.
type sagaRunner[S any] struct {
	store   runtime.Store
	saga    *Saga[S]
	cfg     sagaConfig
	locks   keyed.Mutex
	idx     *deadlineIndex
	tracer  telemetry.Tracer // nil: no spans
	metrics Metrics          // nil: no step metrics
}

// ProjectionName is the name of the projection (and so of the
// checkpoint) that feeds the saga named name from the log.
func ProjectionName(name string) string { return StreamPrefix + name }

// Run runs saga on store until ctx is done (a clean stop, nil) or it
// fails. It consumes the whole log from the saga's checkpoint through a
// Projection named ProjectionName(saga.Name), correlating each record
// to an instance and driving it (see Saga), and fires the deadlines of the
// instances as they fall due on the saga clock, including deadlines that
// fell due while no runner was running. Failures are a *projection.Error
// (wrapping a *Error when an instance was being driven) or a
// *Error from the deadline loop.
//
// On a store that implements lease.Leaser (PostgreSQL), every process may run
// the saga: the runner takes the saga's lease (named
// ProjectionName(saga.Name); projection.LeaseTTL, projection.LeaseHolder and projection.WithoutLease
// passed through Projection apply) and only its holder reads the log
// and fires deadlines, the others standing by to take over when it lapses;
// its checkpoint is fenced by the lease. Without leases, one runner per
// saga and store should run at a time. Either way two runners at once
// never execute a step twice nor decide twice for one instance, but may
// both try to. An unavailable store (runtime.ErrUnavailable) is waited out, not
// returned.
func Run[S any](ctx context.Context, store runtime.Store, saga *Saga[S], opts ...Option) error {
	if err := saga.validate(); err != nil {
		return err
	}
	cfg := sagaConfig{clock: SystemClock(), attempts: DefaultAttempts, retryDelay: DefaultRetryDelay,
		classify: ClassifyError, poll: DefaultPollInterval}
	for _, o := range opts {
		o(&cfg)
	}
	// The lease settings of the projection options (the rest are the
	// projection's own defaults, applied when it runs).
	pcfg := readside.Config{LeaseTTL: lease.DefaultTTL}
	for _, o := range cfg.projection {
		o(&pcfg)
	}
	leaser, leased := lease.Of(store)
	leased = leased && !pcfg.NoLease
	name := ProjectionName(saga.Name)
	metrics := readside.MetricsOf[projection.Metrics](store)
	for outages := 0; ; {
		runCtx := ctx
		var sess *readside.Session
		if leased {
			var err error
			sess, err = readside.Acquire(ctx, leaser, metrics, name, pcfg.Holder(), pcfg.LeaseTTL, nil, func(lease.Lease, error) {})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return &Error{Saga: saga.Name, Trigger: "lease", Err: err}
			}
			runCtx = sess.Context()
		}
		err := runSagaOnce(runCtx, store, saga, cfg, sess)
		if sess != nil {
			if errors.Is(err, lease.ErrLost) {
				sess.Lose()
			}
			sess.Release()
		}
		switch {
		case ctx.Err() != nil:
			return err
		case sess != nil && sess.Lost(), errors.Is(err, lease.ErrLost):
			continue // stand by again
		case errors.Is(err, runtime.ErrUnavailable):
			retry.Sleep(ctx, retry.UnavailableDelay(outages))
			outages++
			continue
		}
		return err
	}
}

// runSagaOnce runs the saga until ctx is done or it fails: one tenure of
// its lease (sess, nil without leases).
func runSagaOnce[S any](ctx context.Context, store runtime.Store, saga *Saga[S], cfg sagaConfig, sess *readside.Session) error {
	r := &sagaRunner[S]{store: store, saga: saga, cfg: cfg, tracer: readside.TracerOf(store), metrics: metricsOf(store)}
	r.idx = newDeadlineIndex(store, saga.Name)
	events := saga.Events
	if events == nil {
		events = []string{}
	}
	p := projection.Projection{Name: ProjectionName(saga.Name), Events: events, Handle: r.handleRecord}
	popts := cfg.projection
	if sess != nil {
		popts = append(popts[:len(popts):len(popts)], func(c *readside.Config) { c.Held = sess })
	}

	// Deadlines that fell due while no runner ran fire first, before the
	// log is read further: what the saga learns from the log after its
	// deadline passed is too late for it.
	if err := r.idx.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &Error{Saga: saga.Name, Trigger: "deadline index", Err: err}
	}
	if _, err := r.fireDue(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dlErr := make(chan error, 1)
	go func() {
		err := r.deadlineLoop(ctx)
		if err != nil {
			cancel()
		}
		dlErr <- err
	}()
	err := projection.Run(ctx, store, p, popts...)
	cancel()
	if derr := <-dlErr; derr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return derr
	}
	return err
}

// handleRecord is the projection's Handle: correlate, then drive.
func (r *sagaRunner[S]) handleRecord(ctx context.Context, rec runtime.Record) error {
	id, react, ok, err := r.saga.Correlate(rec)
	if err != nil || !ok {
		return err
	}
	if err := runtime.ValidateStream(sagaStream(r.saga.Name, id)); err != nil {
		return &Error{Saga: r.saga.Name, Instance: id, Trigger: sagaTrigger{Position: rec.Position}.String(),
			Err: fmt.Errorf("correlation of %s version %d: %w", rec.Stream, rec.Version, err)}
	}
	_, err = r.drive(ctx, id, 0, sagaTrigger{Position: rec.Position}, rec.Name, react)
	return err
}

// drive makes instance id react to trig (unless it already did) and then
// carries out whatever the instance has left to do. It reports whether the
// trigger was handled or found stale; false means the instance is not at
// minVersion yet (a deadline whose reaction is not visible yet).
func (r *sagaRunner[S]) drive(ctx context.Context, id string, minVersion uint64, trig sagaTrigger, event string,
	react func(context.Context, *S, *Actions) error) (bool, error) {
	unlock := r.locks.Lock(id)
	defer unlock()
	fail := func(seq uint64, err error) error {
		return &Error{Saga: r.saga.Name, Instance: id, Trigger: trig.String(), Seq: seq, Err: err}
	}
	for attempt := 0; ; attempt++ {
		in, err := loadInstance(ctx, r.store, r.saga.Name, id)
		if err != nil {
			return false, fail(0, err)
		}
		if in.ended {
			return true, nil
		}
		if in.version < minVersion {
			return false, nil
		}
		if in.failed || !r.pending(in, trig) {
			return true, r.resume(ctx, in, trig, nil)
		}
		state, err := r.saga.state(in, in.state)
		if err != nil {
			return false, fail(0, err)
		}
		do := &Actions{instance: id, now: r.cfg.clock.Now().UTC()}
		if err := react(ctx, state, do); err != nil {
			return false, fail(0, fmt.Errorf("reaction: %w", err))
		}
		data, err := r.saga.EncodeState(state)
		if err != nil {
			return false, fail(0, fmt.Errorf("encoding state: %w", err))
		}
		if in.version == 0 && do.empty() && r.isZero(data) {
			return true, nil // not started, and this event does not start it
		}
		rec := r.reacted(in, trig, event, data, do)
		if err := r.idx.add(ctx, id, in.version+1, rec.Set); err != nil {
			return false, fail(0, err)
		}
		res, err := r.store.Append(ctx, runtime.AppendRequest{Stream: sagaStream(r.saga.Name, id), Expected: in.version,
			Events: []runtime.EventData{{Name: sagaReacted, Schema: 1, Time: r.cfg.clock.Now().UTC(), Data: encodeReacted(rec)}}})
		if errors.Is(err, runtime.ErrConflict) && attempt < runtime.DefaultRetries {
			// Another runner moved the instance: decide again on its state
			// (after a pause: a store may show the winner's append to
			// readers a moment after it refuses ours).
			if err := retry.Backoff(ctx, attempt); err != nil {
				return false, fail(0, err)
			}
			continue
		}
		if err != nil {
			return false, fail(0, fmt.Errorf("persisting the reaction: %w", err))
		}
		if err := in.applyReacted(rec, res.LastVersion); err != nil {
			return false, fail(0, err)
		}
		in.version = res.LastVersion
		fresh := make(map[uint64]*Send, len(do.steps))
		for i, s := range do.steps {
			fresh[rec.FirstSeq+uint64(i)] = s
		}
		return true, r.resume(ctx, in, trig, fresh)
	}
}

// pending reports whether in has yet to react to trig.
func (r *sagaRunner[S]) pending(in *sagaInstance, trig sagaTrigger) bool {
	if trig.Deadline != "" {
		at, ok := in.deadlines[trig.Deadline]
		return ok && at.Equal(trig.At)
	}
	return trig.Position > in.lastPos
}

func (r *sagaRunner[S]) isZero(data []byte) bool {
	zero, err := r.saga.EncodeState(new(S))
	return err == nil && string(zero) == string(data)
}

func (r *sagaRunner[S]) reacted(in *sagaInstance, trig sagaTrigger, event string, state []byte, do *Actions) *reactedRec {
	rec := &reactedRec{Trigger: trig, Event: event, Now: do.now, State: state, StateSchema: r.saga.stateVersion(), FirstSeq: uint64(len(in.steps)) + 1,
		Set: do.set, Cancelled: do.cancelled, Complete: do.complete, Fail: do.fail}
	for _, s := range do.steps {
		sr := stepRec{Target: s.id, Command: fmt.Sprintf("%T", s.command)}
		if s.comp != nil {
			sr.Compensable, sr.CompTarget, sr.CompCommand = true, s.comp.id, fmt.Sprintf("%T", s.comp.command)
		}
		rec.Steps = append(rec.Steps, sr)
	}
	return rec
}

// resume carries out what instance in has left to do, appending each
// outcome. fresh holds the commands of the reaction just persisted (by
// step number); other commands are found by replaying their reaction.
func (r *sagaRunner[S]) resume(ctx context.Context, in *sagaInstance, trig sagaTrigger, fresh map[uint64]*Send) error {
	id := in.id
	fail := func(seq uint64, err error) error {
		return &Error{Saga: r.saga.Name, Instance: id, Trigger: trig.String(), Seq: seq, Err: err}
	}
	for conflicts := 0; ; {
		act, step, end := in.next()
		var name string
		var data []byte
		switch act {
		case actNone:
			return nil
		case actEnd:
			name, data = sagaEnded, encodeEnded(end)
		case actStep, actCompensate:
			comp := act == actCompensate
			send, err := r.command(ctx, in, step, fresh)
			if err != nil {
				return fail(step.Seq, err)
			}
			if comp {
				send = send.comp
			}
			v, tries, err := r.step(ctx, in, step, comp, send)
			outcome := OutcomeCompleted
			switch {
			case err == nil:
				name = map[bool]string{false: sagaStepCompleted, true: sagaCompensated}[comp]
				data = encodeOutcome(outcomeRec{Seq: step.Seq, Version: v, Tries: tries})
			case r.cfg.classify(err) == Business:
				outcome = OutcomeFailed
				name = map[bool]string{false: sagaStepFailed, true: sagaCompensationFailed}[comp]
				data = encodeOutcome(outcomeRec{Seq: step.Seq, Error: err.Error(), Tries: tries})
			default:
				outcome = OutcomeError
			}
			if r.metrics != nil {
				r.metrics.ObserveSagaStep(StepCall{Saga: r.saga.Name, Compensation: comp, Outcome: outcome, Tries: tries})
			}
			if outcome == OutcomeError {
				return fail(step.Seq, err)
			}
		}
		stream := sagaStream(r.saga.Name, in.id)
		_, err := r.store.Append(ctx, runtime.AppendRequest{Stream: stream, Expected: in.version,
			Events: []runtime.EventData{{Name: name, Schema: 1, Time: r.cfg.clock.Now().UTC(), Data: data}}})
		if errors.Is(err, runtime.ErrConflict) {
			// Another runner got there first: continue from what it wrote.
			if err := retry.Backoff(ctx, conflicts); err != nil {
				return fail(0, err)
			}
			conflicts++
			next, err := loadInstance(ctx, r.store, r.saga.Name, id)
			if err != nil {
				return fail(0, err)
			}
			in = next
			continue
		}
		if err != nil {
			return fail(0, fmt.Errorf("persisting %s: %w", name, err))
		}
		if err := in.apply(runtime.Record{Stream: stream, Version: in.version + 1, Name: name, Schema: 1, Data: data}); err != nil {
			return fail(0, err)
		}
	}
}

// command returns the step's command: from the reaction just decided, or
// by replaying the reaction that sent it.
func (r *sagaRunner[S]) command(ctx context.Context, in *sagaInstance, step *Step, fresh map[uint64]*Send) (*Send, error) {
	if s := fresh[step.Seq]; s != nil {
		return s, nil
	}
	rx := in.reactions[step.reaction]
	state, err := r.saga.state(in, in.states[step.reaction])
	if err != nil {
		return nil, err
	}
	do := &Actions{instance: in.id, now: rx.Now}
	if rx.Trigger.Deadline != "" {
		d := Deadline{Instance: in.id, Name: rx.Trigger.Deadline, At: rx.Trigger.At}
		if r.saga.Deadline != nil {
			err = r.saga.Deadline(ctx, state, d, do)
		}
	} else {
		err = r.replayRecord(ctx, in.id, rx.Trigger.Position, state, do)
	}
	if err != nil {
		return nil, fmt.Errorf("replaying the reaction to %s: %w", rx.Trigger, err)
	}
	i := step.Seq - rx.FirstSeq
	if len(do.steps) != len(rx.Steps) || i >= uint64(len(do.steps)) ||
		do.steps[i].id != step.Target || fmt.Sprintf("%T", do.steps[i].command) != step.Command ||
		(do.steps[i].comp != nil) != step.Compensable {
		return nil, fmt.Errorf("%w: replaying the reaction to %s did not send step %d (%s to %q) again",
			errNotDeterministic, rx.Trigger, step.Seq, step.Command, step.Target)
	}
	return do.steps[i], nil
}

// step executes a step's command (or compensation) under a context caused
// by the event behind it, in a span when there is a tracer.
func (r *sagaRunner[S]) step(ctx context.Context, in *sagaInstance, step *Step, comp bool, send *Send) (uint64, int, error) {
	ctx = r.causedBy(ctx, in, step)
	if r.tracer == nil {
		return r.execute(ctx, in.id, step.Seq, comp, send)
	}
	s := telemetry.SpanStart{Kind: telemetry.SpanSagaStep, Name: r.saga.Name, Stream: telemetry.Stream{ID: send.id},
		Command: fmt.Sprintf("%T", send.command), Instance: in.id, Step: stepLabel(step.Seq, comp)}
	if ev, ok := runtime.CauseFromContext(ctx); ok {
		s.Event, s.Version, s.Position, s.Cause = ev.Name, ev.Version, ev.Position, ev.Metadata
	}
	ctx, span := r.tracer.Start(ctx, s)
	v, tries, err := r.execute(ctx, in.id, step.Seq, comp, send)
	span.End(err)
	return v, tries, err
}

// stepLabel is a step's MetadataStep value: its number, with "c" for
// its compensation.
func stepLabel(seq uint64, comp bool) string {
	if comp {
		return strconv.FormatUint(seq, 10) + "c"
	}
	return strconv.FormatUint(seq, 10)
}

// causedBy returns ctx caused by the event behind step (runtime.ContextCausedBy):
// the event its reaction handled or, for a reaction to a deadline, the
// event of the latest event reaction before it (the one that led there).
// A compensation is caused by the event that caused the step it undoes.
// The record comes from ctx when the runner is handling it, else from the
// store. Without such an event (or when it cannot be read) ctx is returned
// as it is: a missing link never stops a step.
func (r *sagaRunner[S]) causedBy(ctx context.Context, in *sagaInstance, step *Step) context.Context {
	var pos uint64
	for i := step.reaction; i >= 0 && pos == 0; i-- {
		pos = in.reactions[i].Trigger.Position
	}
	if pos == 0 {
		return ctx
	}
	if ev, ok := runtime.CauseFromContext(ctx); ok && ev.Position == pos {
		return ctx
	}
	for rec, err := range r.store.ReadAll(ctx, pos-1) {
		if err != nil || rec.Position != pos {
			break
		}
		return runtime.ContextCausedBy(ctx, rec)
	}
	return ctx
}

// replayRecord runs the reaction to the record at position again.
func (r *sagaRunner[S]) replayRecord(ctx context.Context, id string, position uint64, state *S, do *Actions) error {
	for rec, err := range r.store.ReadAll(ctx, position-1) {
		if err != nil {
			return err
		}
		if rec.Position != position {
			break
		}
		if rec, err = runtime.OpenRecordFrom(ctx, r.store, rec); err != nil {
			return err
		}
		cid, react, ok, err := r.saga.Correlate(rec)
		if err != nil {
			return err
		}
		if !ok || cid != id {
			return fmt.Errorf("%w: the record at position %d no longer correlates to the instance", errNotDeterministic, position)
		}
		return react(ctx, state, do)
	}
	return fmt.Errorf("%w: no record at position %d", runtime.ErrNotFound, position)
}

// execute runs a step's command (or compensation) under its idempotency
// key, retrying transient errors with back-off.
func (r *sagaRunner[S]) execute(ctx context.Context, id string, seq uint64, comp bool, s *Send) (uint64, int, error) {
	key := StepKey(r.saga.Name, id, seq, comp)
	md := map[string]string{MetadataName: r.saga.Name, MetadataInstance: id, MetadataStep: stepLabel(seq, comp)}
	delay := r.cfg.retryDelay
	for try := 1; ; try++ {
		v, err := r.saga.Execute(ctx, s.id, s.command, runtime.IdempotencyKey(key), runtime.Metadata(md))
		if err == nil {
			return v, try, nil
		}
		if ctx.Err() != nil {
			return 0, try, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if r.cfg.classify(err) != Transient {
			return 0, try, err
		}
		if try >= r.cfg.attempts {
			return 0, try, fmt.Errorf("giving up after %d tries: %w", try, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, try, fmt.Errorf("%w (%w)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(delay*2, projection.MaxHandlerRetryDelay)
	}
}
