package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// SagaStreamPrefix starts the stream type of every saga instance stream:
// instance id of the saga named N is the stream ("cqrsgen.saga." + N, id).
// Saga deadline indexes live in streams of type SagaDeadlinesPrefix + N.
const (
	SagaStreamPrefix    = "cqrsgen.saga."
	SagaDeadlinesPrefix = "cqrsgen.saga-deadlines."
)

// Metadata keys the runtime attaches to every event a saga's command
// appends, so that reactions can correlate the results of their own steps
// (see SentBy).
const (
	MetadataSaga         = "cqrsgen.saga"
	MetadataSagaInstance = "cqrsgen.saga.instance"
	MetadataSagaStep     = "cqrsgen.saga.step"
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
// Each instance is an event stream of its own (SagaStreamPrefix + Name,
// instance id) that only the runtime writes. Reacting to an event or a
// deadline is two-phase:
//
//  1. The reaction is decided and persisted: the instance is loaded, the
//     user's reaction runs on a copy of its state and records what to do in
//     a SagaActions (steps to send, compensations, deadlines, Complete,
//     Fail). The new state and that plan are appended as one
//     "cqrsgen.saga.reacted" record, expecting the version loaded, so two
//     runners never both decide for one instance (optimistic concurrency).
//  2. The plan is carried out: each pending step's command is executed with
//     an idempotency key derived from the saga, the instance and the step's
//     number (SagaStepKey), and its outcome is appended
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
// and the event (or deadline): no clocks (use SagaActions.Now), no random
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
	// failure is an error (generated code returns a *DecodeError).
	Correlate func(rec Record) (instance string, react func(ctx context.Context, state *S, do *SagaActions) error, ok bool, err error)
	// Deadline reacts to a deadline of the instance. Nil means a deadline
	// fails the saga (its completed steps are compensated).
	Deadline func(ctx context.Context, state *S, d SagaDeadline, do *SagaActions) error
	// Execute executes command c against aggregate id with opts (the
	// step's idempotency key and metadata) and returns the new version.
	// Generated code switches on the command's type to the repository of
	// its aggregate; a type it does not route is an error matching
	// ErrInvalid.
	Execute func(ctx context.Context, id string, c any, opts ...ExecOption) (uint64, error)
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
	// older then fails to load with a *DecodeError wrapping a
	// *StateVersionError.
	UpcastState func(version uint32, data []byte, state *S) error
}

func (s *Saga[S]) validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil saga", ErrInvalid)
	}
	if err := ValidateKey("saga name", s.Name); err != nil {
		return err
	}
	if len(SagaDeadlinesPrefix+s.Name) > MaxTypeLength {
		return fmt.Errorf("%w: saga name is %d bytes, limit %d", ErrTooLarge, len(s.Name), MaxTypeLength-len(SagaDeadlinesPrefix))
	}
	switch {
	case s.Correlate == nil:
		return fmt.Errorf("%w: saga %q has no Correlate function", ErrInvalid, s.Name)
	case s.Execute == nil:
		return fmt.Errorf("%w: saga %q has no Execute function", ErrInvalid, s.Name)
	case s.EncodeState == nil || s.DecodeState == nil:
		return fmt.Errorf("%w: saga %q has no state codec", ErrInvalid, s.Name)
	}
	return nil
}

// SagaActions records what a reaction decides. A reaction gets a fresh one
// and must only use it during the call; nothing happens until the reaction
// returns nil and its decision is persisted.
type SagaActions struct {
	instance  string
	now       time.Time
	steps     []*SagaSend
	set       []SagaDeadline
	cancelled []string
	complete  bool
	fail      string
}

// SagaSend is a step a reaction sent; Compensate attaches its
// compensation.
type SagaSend struct {
	id      string
	command any
	comp    *SagaSend
}

// Instance returns the id of the saga instance reacting.
func (do *SagaActions) Instance() string { return do.instance }

// Now returns the saga clock's time when the reaction started. Reactions
// must use it instead of time.Now, to stay deterministic.
func (do *SagaActions) Now() time.Time { return do.now }

// Send sends command c to the aggregate with id id, as the instance's next
// step. Steps run in the order sent, after the reaction is persisted, each
// with its own idempotency key; the command's type must be a command of an
// aggregate the saga routes (generated code checks this when it is
// generated). A step rejected by its aggregate fails the saga.
func (do *SagaActions) Send(id string, c any) *SagaSend {
	s := &SagaSend{id: id, command: c}
	do.steps = append(do.steps, s)
	return s
}

// Compensate sets the command that undoes the step, sent to aggregate id
// if the saga fails after the step completed. Compensations run newest
// step first.
func (s *SagaSend) Compensate(id string, c any) {
	s.comp = &SagaSend{id: id, command: c}
}

// Deadline sets (or re-sets) the instance's deadline name to fire once d
// has passed on the saga clock. It is persisted with the reaction, so it
// fires after a restart too; a deadline reaction (the saga's OnDeadline)
// then runs with it. Final instances drop their deadlines.
func (do *SagaActions) Deadline(name string, d time.Duration) {
	do.DeadlineAt(name, do.now.Add(d))
}

// DeadlineAt is Deadline with an absolute time.
func (do *SagaActions) DeadlineAt(name string, at time.Time) {
	do.set = append(do.set, SagaDeadline{Instance: do.instance, Name: name, At: at.UTC()})
}

// CancelDeadline cancels the instance's deadline name, if set.
func (do *SagaActions) CancelDeadline(name string) {
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
func (do *SagaActions) Complete() { do.complete = true }

// Fail fails the saga: steps not yet executed are skipped, and the
// completed steps are compensated, newest first. reason is persisted.
func (do *SagaActions) Fail(reason error) {
	if reason == nil {
		reason = errors.New("failed")
	}
	do.fail = reason.Error()
}

func (do *SagaActions) empty() bool {
	return len(do.steps) == 0 && len(do.set) == 0 && len(do.cancelled) == 0 && !do.complete && do.fail == ""
}

// SentBy returns the saga instance whose step appended an event with
// metadata md, when that was a step (or compensation) of the saga named
// saga. Correlation rules use it to map the results of their own commands
// back to the instance.
func SentBy(md map[string]string, saga string) (instance string, ok bool) {
	if md[MetadataSaga] != saga {
		return "", false
	}
	instance, ok = md[MetadataSagaInstance]
	return instance, ok && instance != ""
}

// SagaStepKey returns the idempotency key of step seq of instance id of the
// saga named saga; compensation selects the key of the step's
// compensation. Keys are injective in (saga, id, seq, compensation) and at
// most MaxIDLength bytes: an instance id too long to fit is replaced by its
// SHA-256.
func SagaStepKey(saga, id string, seq uint64, compensation bool) string {
	kind := "s"
	if compensation {
		kind = "c"
	}
	prefix := "cqrsgen.saga:" + strconv.Itoa(len(saga)) + ":" + saga + ":"
	suffix := ":" + kind + strconv.FormatUint(seq, 10)
	if k := prefix + "i" + id + suffix; len(k) <= MaxIDLength {
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
// ErrClosed, ErrCorrupt, ErrInvalid, ErrTooLarge and context.Canceled are
// Fatal; ErrConflict, ErrUnavailable, context.DeadlineExceeded,
// MarkTransient errors and net.Error timeouts are Transient; everything else, in particular every
// error a Handle method returns, is a Business rejection.
func ClassifyError(err error) ErrorClass {
	var te *transientError
	var ne net.Error
	switch {
	case errors.As(err, &te), errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Transient
	case errors.Is(err, ErrClosed), errors.Is(err, ErrCorrupt), errors.Is(err, ErrInvalid),
		errors.Is(err, ErrTooLarge), errors.Is(err, context.Canceled):
		return Fatal
	}
	return Business
}

// Defaults of the saga options.
const (
	// DefaultSagaAttempts is how many times a step's command is tried when
	// it fails with a transient error.
	DefaultSagaAttempts = 5
	// DefaultSagaRetryDelay is the first back-off; it doubles each time up
	// to MaxHandlerRetryDelay.
	DefaultSagaRetryDelay = 50 * time.Millisecond
	// DefaultSagaPollInterval is how often the deadline loop looks for
	// deadlines set by other processes.
	DefaultSagaPollInterval = time.Second
)

// SagaOption configures RunSaga.
type SagaOption func(*sagaConfig)

type sagaConfig struct {
	clock      Clock
	attempts   int
	retryDelay time.Duration
	classify   func(error) ErrorClass
	poll       time.Duration
	projection []ProjectionOption
}

// SagaClock sets the clock of deadlines and SagaActions.Now (default: the
// system clock). Tests pass a *ManualClock.
func SagaClock(c Clock) SagaOption {
	return func(cfg *sagaConfig) {
		if c != nil {
			cfg.clock = c
		}
	}
}

// SagaRetry sets how a step failing with a transient error is retried: up
// to attempts tries in all (≤ 1: no retries), waiting base before the
// second and doubling each time (real time, not the saga clock).
func SagaRetry(attempts int, base time.Duration) SagaOption {
	return func(cfg *sagaConfig) { cfg.attempts, cfg.retryDelay = max(attempts, 1), max(base, 0) }
}

// SagaClassify replaces ClassifyError.
func SagaClassify(f func(error) ErrorClass) SagaOption {
	return func(cfg *sagaConfig) {
		if f != nil {
			cfg.classify = f
		}
	}
}

// SagaPollInterval sets how often (on the saga clock) the deadline loop
// reads deadlines that other processes set (default
// DefaultSagaPollInterval). Deadlines set in this process wake it at once.
func SagaPollInterval(d time.Duration) SagaOption {
	return func(cfg *sagaConfig) {
		if d > 0 {
			cfg.poll = d
		}
	}
}

// SagaProjection passes options to the projection that feeds the saga
// from the log (CheckpointEvery, HandlerRetry).
func SagaProjection(opts ...ProjectionOption) SagaOption {
	return func(cfg *sagaConfig) { cfg.projection = append(cfg.projection, opts...) }
}

// SagaError reports why a saga runner stopped while driving an instance.
// Unwrap returns the cause.
type SagaError struct {
	Saga, Instance string
	// Trigger describes the event or deadline being handled.
	Trigger string
	// Seq is the step being executed, 0 if none.
	Seq uint64
	Err error
}

func (e *SagaError) Error() string {
	s := fmt.Sprintf("cqrsgen: saga %q instance %q (%s)", e.Saga, e.Instance, e.Trigger)
	if e.Seq != 0 {
		s += fmt.Sprintf(" step %d", e.Seq)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *SagaError) Unwrap() error { return e.Err }

// sagaRunner drives the instances of one saga.
type sagaRunner[S any] struct {
	store   Store
	saga    *Saga[S]
	cfg     sagaConfig
	locks   keyedMutex
	idx     *deadlineIndex
	tracer  Tracer         // nil: no spans
	metrics CommandMetrics // nil: no step metrics
}

// SagaProjectionName is the name of the projection (and so of the
// checkpoint) that feeds the saga named name from the log.
func SagaProjectionName(name string) string { return SagaStreamPrefix + name }

// RunSaga runs saga on store until ctx is done (a clean stop, nil) or it
// fails. It consumes the whole log from the saga's checkpoint through a
// Projection named SagaProjectionName(saga.Name), correlating each record
// to an instance and driving it (see Saga), and fires the deadlines of the
// instances as they fall due on the saga clock, including deadlines that
// fell due while no runner was running. Failures are a *ProjectionError
// (wrapping a *SagaError when an instance was being driven) or a
// *SagaError from the deadline loop.
//
// On a store that implements Leaser (PostgreSQL), every process may run
// the saga: the runner takes the saga's lease (named
// SagaProjectionName(saga.Name); LeaseTTL, LeaseHolder and WithoutLease
// passed through SagaProjection apply) and only its holder reads the log
// and fires deadlines, the others standing by to take over when it lapses;
// its checkpoint is fenced by the lease. Without leases, one runner per
// saga and store should run at a time. Either way two runners at once
// never execute a step twice nor decide twice for one instance, but may
// both try to. An unavailable store (ErrUnavailable) is waited out, not
// returned.
func RunSaga[S any](ctx context.Context, store Store, saga *Saga[S], opts ...SagaOption) error {
	if err := saga.validate(); err != nil {
		return err
	}
	cfg := sagaConfig{clock: SystemClock(), attempts: DefaultSagaAttempts, retryDelay: DefaultSagaRetryDelay,
		classify: ClassifyError, poll: DefaultSagaPollInterval}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg := defaultProjectionConfig()
	for _, o := range cfg.projection {
		o(&pcfg)
	}
	leaser, leased := LeaserOf(store)
	leased = leased && !pcfg.noLease
	name := SagaProjectionName(saga.Name)
	metrics := readSideMetricsOf(store)
	for outages := 0; ; {
		runCtx := ctx
		var sess *leaseSession
		if leased {
			var err error
			sess, err = acquireLease(ctx, leaser, metrics, name, pcfg.holder(), pcfg.leaseTTL, nil, func(Lease, error) {})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return &SagaError{Saga: saga.Name, Trigger: "lease", Err: err}
			}
			runCtx = sess.ctx
		}
		err := runSagaOnce(runCtx, store, saga, cfg, sess)
		if sess != nil {
			if errors.Is(err, ErrLeaseLost) {
				sess.lose()
			}
			sess.release()
		}
		switch {
		case ctx.Err() != nil:
			return err
		case sess != nil && sess.lost(), errors.Is(err, ErrLeaseLost):
			continue // stand by again
		case errors.Is(err, ErrUnavailable):
			sleepCtx(ctx, unavailableDelay(outages))
			outages++
			continue
		}
		return err
	}
}

// runSagaOnce runs the saga until ctx is done or it fails: one tenure of
// its lease (sess, nil without leases).
func runSagaOnce[S any](ctx context.Context, store Store, saga *Saga[S], cfg sagaConfig, sess *leaseSession) error {
	r := &sagaRunner[S]{store: store, saga: saga, cfg: cfg, tracer: tracerOf(store), metrics: commandMetricsOf(store)}
	r.idx = newDeadlineIndex(store, saga.Name)
	events := saga.Events
	if events == nil {
		events = []string{}
	}
	p := Projection{Name: SagaProjectionName(saga.Name), Events: events, Handle: r.handleRecord}
	popts := cfg.projection
	if sess != nil {
		popts = append(popts[:len(popts):len(popts)], func(c *projectionConfig) { c.held = sess })
	}

	// Deadlines that fell due while no runner ran fire first, before the
	// log is read further: what the saga learns from the log after its
	// deadline passed is too late for it.
	if err := r.idx.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &SagaError{Saga: saga.Name, Trigger: "deadline index", Err: err}
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
	err := RunProjection(ctx, store, p, popts...)
	cancel()
	if derr := <-dlErr; derr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return derr
	}
	return err
}

// handleRecord is the projection's Handle: correlate, then drive.
func (r *sagaRunner[S]) handleRecord(ctx context.Context, rec Record) error {
	id, react, ok, err := r.saga.Correlate(rec)
	if err != nil || !ok {
		return err
	}
	if err := ValidateStream(sagaStream(r.saga.Name, id)); err != nil {
		return &SagaError{Saga: r.saga.Name, Instance: id, Trigger: sagaTrigger{Position: rec.Position}.String(),
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
	react func(context.Context, *S, *SagaActions) error) (bool, error) {
	unlock := r.locks.lock(id)
	defer unlock()
	fail := func(seq uint64, err error) error {
		return &SagaError{Saga: r.saga.Name, Instance: id, Trigger: trig.String(), Seq: seq, Err: err}
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
		do := &SagaActions{instance: id, now: r.cfg.clock.Now().UTC()}
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
		res, err := r.store.Append(ctx, AppendRequest{Stream: sagaStream(r.saga.Name, id), Expected: in.version,
			Events: []EventData{{Name: sagaReacted, Schema: 1, Time: r.cfg.clock.Now().UTC(), Data: encodeReacted(rec)}}})
		if errors.Is(err, ErrConflict) && attempt < DefaultRetries {
			// Another runner moved the instance: decide again on its state
			// (after a pause: a store may show the winner's append to
			// readers a moment after it refuses ours).
			if err := backoff(ctx, attempt); err != nil {
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
		fresh := make(map[uint64]*SagaSend, len(do.steps))
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

func (r *sagaRunner[S]) reacted(in *sagaInstance, trig sagaTrigger, event string, state []byte, do *SagaActions) *reactedRec {
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
func (r *sagaRunner[S]) resume(ctx context.Context, in *sagaInstance, trig sagaTrigger, fresh map[uint64]*SagaSend) error {
	id := in.id
	fail := func(seq uint64, err error) error {
		return &SagaError{Saga: r.saga.Name, Instance: id, Trigger: trig.String(), Seq: seq, Err: err}
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
			outcome := SagaStepCompleted
			switch {
			case err == nil:
				name = map[bool]string{false: sagaStepCompleted, true: sagaCompensated}[comp]
				data = encodeOutcome(outcomeRec{Seq: step.Seq, Version: v, Tries: tries})
			case r.cfg.classify(err) == Business:
				outcome = SagaStepFailed
				name = map[bool]string{false: sagaStepFailed, true: sagaCompensationFailed}[comp]
				data = encodeOutcome(outcomeRec{Seq: step.Seq, Error: err.Error(), Tries: tries})
			default:
				outcome = SagaStepError
			}
			if r.metrics != nil {
				r.metrics.ObserveSagaStep(SagaStepCall{Saga: r.saga.Name, Compensation: comp, Outcome: outcome, Tries: tries})
			}
			if outcome == SagaStepError {
				return fail(step.Seq, err)
			}
		}
		stream := sagaStream(r.saga.Name, in.id)
		_, err := r.store.Append(ctx, AppendRequest{Stream: stream, Expected: in.version,
			Events: []EventData{{Name: name, Schema: 1, Time: r.cfg.clock.Now().UTC(), Data: data}}})
		if errors.Is(err, ErrConflict) {
			// Another runner got there first: continue from what it wrote.
			if err := backoff(ctx, conflicts); err != nil {
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
		if err := in.apply(Record{Stream: stream, Version: in.version + 1, Name: name, Schema: 1, Data: data}); err != nil {
			return fail(0, err)
		}
	}
}

// command returns the step's command: from the reaction just decided, or
// by replaying the reaction that sent it.
func (r *sagaRunner[S]) command(ctx context.Context, in *sagaInstance, step *SagaStep, fresh map[uint64]*SagaSend) (*SagaSend, error) {
	if s := fresh[step.Seq]; s != nil {
		return s, nil
	}
	rx := in.reactions[step.reaction]
	state, err := r.saga.state(in, in.states[step.reaction])
	if err != nil {
		return nil, err
	}
	do := &SagaActions{instance: in.id, now: rx.Now}
	if rx.Trigger.Deadline != "" {
		d := SagaDeadline{Instance: in.id, Name: rx.Trigger.Deadline, At: rx.Trigger.At}
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
func (r *sagaRunner[S]) step(ctx context.Context, in *sagaInstance, step *SagaStep, comp bool, send *SagaSend) (uint64, int, error) {
	ctx = r.causedBy(ctx, in, step)
	if r.tracer == nil {
		return r.execute(ctx, in.id, step.Seq, comp, send)
	}
	s := SpanStart{Kind: SpanSagaStep, Name: r.saga.Name, Stream: StreamID{ID: send.id},
		Command: fmt.Sprintf("%T", send.command), Instance: in.id, Step: stepLabel(step.Seq, comp)}
	if c, _ := ctx.Value(causeKey{}).(*cause); c != nil && c.event != nil {
		s.Event, s.Version, s.Position, s.Cause = c.event.Name, c.event.Version, c.event.Position, c.event.Metadata
	}
	ctx, span := r.tracer.Start(ctx, s)
	v, tries, err := r.execute(ctx, in.id, step.Seq, comp, send)
	span.End(err)
	return v, tries, err
}

// stepLabel is a step's MetadataSagaStep value: its number, with "c" for
// its compensation.
func stepLabel(seq uint64, comp bool) string {
	if comp {
		return strconv.FormatUint(seq, 10) + "c"
	}
	return strconv.FormatUint(seq, 10)
}

// causedBy returns ctx caused by the event behind step (ContextCausedBy):
// the event its reaction handled or, for a reaction to a deadline, the
// event of the latest event reaction before it (the one that led there).
// A compensation is caused by the event that caused the step it undoes.
// The record comes from ctx when the runner is handling it, else from the
// store. Without such an event (or when it cannot be read) ctx is returned
// as it is: a missing link never stops a step.
func (r *sagaRunner[S]) causedBy(ctx context.Context, in *sagaInstance, step *SagaStep) context.Context {
	var pos uint64
	for i := step.reaction; i >= 0 && pos == 0; i-- {
		pos = in.reactions[i].Trigger.Position
	}
	if pos == 0 {
		return ctx
	}
	if c, _ := ctx.Value(causeKey{}).(*cause); c != nil && c.event != nil && c.event.Position == pos {
		return ctx
	}
	for rec, err := range r.store.ReadAll(ctx, pos-1) {
		if err != nil || rec.Position != pos {
			break
		}
		return ContextCausedBy(ctx, rec)
	}
	return ctx
}

// replayRecord runs the reaction to the record at position again.
func (r *sagaRunner[S]) replayRecord(ctx context.Context, id string, position uint64, state *S, do *SagaActions) error {
	for rec, err := range r.store.ReadAll(ctx, position-1) {
		if err != nil {
			return err
		}
		if rec.Position != position {
			break
		}
		if rec, err = OpenRecordFrom(ctx, r.store, rec); err != nil {
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
	return fmt.Errorf("%w: no record at position %d", ErrNotFound, position)
}

// execute runs a step's command (or compensation) under its idempotency
// key, retrying transient errors with back-off.
func (r *sagaRunner[S]) execute(ctx context.Context, id string, seq uint64, comp bool, s *SagaSend) (uint64, int, error) {
	key := SagaStepKey(r.saga.Name, id, seq, comp)
	md := map[string]string{MetadataSaga: r.saga.Name, MetadataSagaInstance: id, MetadataSagaStep: stepLabel(seq, comp)}
	delay := r.cfg.retryDelay
	for try := 1; ; try++ {
		v, err := r.saga.Execute(ctx, s.id, s.command, IdempotencyKey(key), Metadata(md))
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
		delay = min(delay*2, MaxHandlerRetryDelay)
	}
}
