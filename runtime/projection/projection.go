package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/readside"
	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// Projection describes a read model fed by the whole event log of a store:
// events of any stream, in global position order. cqrsgen emits one for
// each //cqrs:projection type; it can also be written by hand. All fields
// are plain values and functions, so the generated code stays
// reflection-free.
//
// A projection runs in one of two delivery modes, chosen by Position:
//
//   - At-least-once (Position is nil): the runner keeps the projection's
//     checkpoint in the store (Store.SaveCheckpoint under Name) and saves it
//     after handling, every few events (see CheckpointEvery), when it has
//     caught up with the head, when it stops and before it fails. After a
//     crash the events handled since the last saved checkpoint are handled
//     again, so handlers must tolerate seeing an event twice (upserts keyed
//     by stream and version, or by Envelope.Position).
//   - Exactly-once (Position is set): the projection owns its checkpoint.
//     Each successful Handle call must commit the read model's writes
//     together with rec.Position (Envelope.Position), atomically: in the
//     same SQL transaction, the same Pebble batch, or under the same lock.
//     Position returns the last position so committed, and the runner
//     resumes after it; it never writes the store checkpoint. Since state
//     and position move together, a crash at any point loses nothing and
//     applies nothing twice.
type Projection struct {
	// Name is the projection's stable checkpoint name, unique per store
	// among running projections. Names starting with "cqrsgen:" are
	// reserved.
	Name string
	// Events lists the wire names the projection consumes. Records with
	// other names are skipped without calling Handle (so without decoding
	// them). A nil Events hands every record to Handle.
	Events []string
	// Handle applies one record to the read model. Generated code decodes
	// the record by rec.Name (returning a *runtime.DecodeError when that fails) and
	// calls the user's On<Event> method with an Envelope built by
	// runtime.EnvelopeOf. An error is retried with back-off (see HandlerRetry), and
	// then stops the projection with a *Error. Errors that match
	// runtime.ErrCorrupt are not retried: the bytes will not change. Errors that
	// match runtime.ErrUnavailable (the read model's database is down) are retried
	// without limit, the projection waiting meanwhile; errors that match
	// lease.ErrLost (a fenced write refused) end this process's tenure and
	// the projection stands by.
	Handle func(ctx context.Context, rec runtime.Record) error
	// Reset empties the read model; it is called by a rebuild before the
	// log is replayed from the start. It must be idempotent (a crash during
	// a rebuild makes the runner call it again). In exactly-once mode it
	// must also set the committed position to 0, atomically with emptying
	// the model. Nil when the projection has no Reset method: then a
	// rebuild is refused with an error matching runtime.ErrInvalid.
	Reset func(ctx context.Context) error
	// Position, when set, puts the projection in exactly-once mode (see
	// above): it returns the last position committed together with the read
	// model, 0 for an empty model.
	Position func(ctx context.Context) (uint64, error)
}

// reservedPrefix starts checkpoint names the runtime uses for itself.
const reservedPrefix = "cqrsgen:"

// rebuildMarker is the checkpoint name that records an unfinished rebuild
// of an at-least-once projection (value 1 while one is in progress).
func rebuildMarker(name string) string { return reservedPrefix + "rebuild:" + name }

func (p *Projection) validate() error {
	if err := runtime.ValidateKey("projection name", p.Name); err != nil {
		return err
	}
	if strings.HasPrefix(p.Name, reservedPrefix) {
		return fmt.Errorf("%w: projection name %q uses the reserved prefix %q", runtime.ErrInvalid, p.Name, reservedPrefix)
	}
	if len(rebuildMarker(p.Name)) > runtime.MaxIDLength {
		return fmt.Errorf("%w: projection name is %d bytes, limit %d", runtime.ErrTooLarge, len(p.Name), runtime.MaxIDLength-len(rebuildMarker("")))
	}
	if p.Handle == nil {
		return fmt.Errorf("%w: projection %q has no Handle function", runtime.ErrInvalid, p.Name)
	}
	for _, e := range p.Events {
		if e == "" {
			return fmt.Errorf("%w: projection %q consumes an empty event name", runtime.ErrInvalid, p.Name)
		}
	}
	return nil
}

// Defaults of the projection options.
const (
	// DefaultCheckpointEvents is how many records an at-least-once
	// projection processes between checkpoint saves.
	DefaultCheckpointEvents = 100
	// DefaultCheckpointInterval is the longest an at-least-once projection
	// goes, while processing records, without saving its checkpoint.
	DefaultCheckpointInterval = time.Second
	// DefaultHandlerAttempts is how many times a failing Handle call is
	// tried before the projection stops.
	DefaultHandlerAttempts = 3
	// DefaultHandlerRetryDelay is the delay before the first retry; each
	// further retry waits twice as long, up to MaxHandlerRetryDelay.
	DefaultHandlerRetryDelay = 100 * time.Millisecond
	// MaxHandlerRetryDelay caps the back-off between handler attempts.
	MaxHandlerRetryDelay = 30 * time.Second
)

// Option configures how projections run. Options given to
// NewGroup apply to every projection of the group; options given
// to Group.Add or Run override them for one.
type Option func(*readside.Config)

func defaultProjectionConfig() readside.Config {
	return readside.Config{
		CheckpointEvents:   DefaultCheckpointEvents,
		CheckpointInterval: DefaultCheckpointInterval,
		Attempts:           DefaultHandlerAttempts,
		RetryDelay:         DefaultHandlerRetryDelay,
		LeaseTTL:           lease.DefaultTTL,
	}
}

// CheckpointEvery sets how often an at-least-once projection saves its
// checkpoint while it processes records: after every n records (handled or
// skipped; n ≤ 0 means no count limit) or once interval has passed since
// the last save (interval ≤ 0 means no time limit), whichever comes first.
// Whatever the setting, the checkpoint is also saved whenever the
// projection has caught up with the head, when it stops and before it
// fails. CheckpointEvery(1, 0) saves after every record: after a crash at
// most the one event being handled is handled again. With larger values up
// to n-1 records, or interval's worth, are replayed after a crash.
// Exactly-once projections ignore it.
func CheckpointEvery(n int, interval time.Duration) Option {
	return func(c *readside.Config) {
		c.CheckpointEvents, c.CheckpointInterval = max(n, 0), max(interval, 0)
	}
}

// HandlerRetry sets how a failing Handle call is retried: up to attempts
// calls in all (attempts ≤ 1 disables retries), waiting base before the
// second, then doubling each time up to MaxHandlerRetryDelay. Errors that
// match runtime.ErrCorrupt are never retried, and a done context ends the waiting.
func HandlerRetry(attempts int, base time.Duration) Option {
	return func(c *readside.Config) {
		c.Attempts, c.RetryDelay = max(attempts, 1), max(base, 0)
	}
}

// retryDelayFor returns the wait before attempt n+1 (n ≥ 1 failed attempts).
func retryDelayFor(c *readside.Config, n int) time.Duration {
	d := c.RetryDelay
	for i := 1; i < n && d < MaxHandlerRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxHandlerRetryDelay)
}

// Error reports why a projection stopped. When a record was
// being handled, Stream, Version, Event and Position name it and Attempts
// says how many times Handle was called; otherwise (a store failure while
// reading, saving the checkpoint or rebuilding) Event is empty and
// Position is where the projection had got to. Unwrap returns the cause,
// so errors.Is and errors.As see through it.
type Error struct {
	// Projection is the projection's name.
	Projection string
	// Position is the global position of the failing record, or the last
	// position processed when no record was involved.
	Position uint64
	// Stream and Version locate the failing record.
	Stream  runtime.StreamID
	Version uint64
	// Event is the failing record's wire name, "" when no record was
	// involved.
	Event string
	// Attempts is how many times Handle was called for the record.
	Attempts int
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	if e.Event == "" {
		return fmt.Sprintf("cqrsgen: projection %q stopped after position %d: %v", e.Projection, e.Position, e.Err)
	}
	return fmt.Sprintf("cqrsgen: projection %q failed at position %d (stream %s version %d, event %s) after %d attempt(s): %v",
		e.Projection, e.Position, e.Stream, e.Version, e.Event, e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// State is the life-cycle state of a projection in a group.
type State int

// Projection states.
const (
	// Stopped: not running (not started yet, or its group's
	// context is done).
	Stopped State = iota
	// Running: catching up or following the log live.
	Running
	// Failed: stopped by an error (Status.LastError)
	// until it is rebuilt or its group is run again.
	Failed
	// Standby: another process holds the projection's lease
	// (Status.Lease); this one takes over when it lapses.
	Standby
	// Waiting: the store is unavailable (LastError says why);
	// the projection retries with back-off and resumes by itself.
	Waiting
)

// String returns "stopped", "running", "failed", "standby" or "waiting".
func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Running:
		return "running"
	case Failed:
		return "failed"
	case Standby:
		return "standby"
	case Waiting:
		return "waiting"
	}
	return fmt.Sprintf("ProjectionState(%d)", int(s))
}

// Status is a snapshot of a projection's progress.
type Status struct {
	// Name is the projection's name.
	Name string
	// State is running, stopped, failed, standby or waiting.
	State State
	// ExactlyOnce reports that the projection owns its checkpoint.
	ExactlyOnce bool
	// Position is the last global position processed (handled or
	// skipped) in this process, or the checkpoint it resumed from.
	Position uint64
	// Checkpoint is the last position known to be durable: the saved
	// checkpoint (at-least-once), or the position the read model last
	// committed (exactly-once; records skipped after it do not move it).
	Checkpoint uint64
	// Head is the store's head when the status was taken, and Lag is
	// Head - Position (0 when the projection is ahead of that reading).
	Head, Lag uint64
	// Handled counts successful Handle calls by this group since it was
	// created, across rebuilds and runs.
	Handled uint64
	// Rebuilds counts completed rebuilds since the group was created.
	Rebuilds uint64
	// LastError is the error that failed the projection (a
	// *Error), or, while waiting, the store's error; nil when it
	// has not failed since its last start.
	LastError error
	// Lease is the projection's lease as last seen: held by this process
	// (Lease.Holder is ours) while running, by another while standing by.
	// Zero when the projection runs without a lease.
	Lease lease.Lease
}

// errInterrupted ends a run so that its goroutine can serve a rebuild
// request; errRetryRebuild tells Rebuild its request was not served
// because the group stopped.
var (
	errInterrupted  = errors.New("cqrsgen: projection interrupted for a rebuild")
	errRetryRebuild = errors.New("cqrsgen: projection group stopped before the rebuild")
)

// runner runs one projection. The fields above mu are set once; the
// counters are atomics; the rest is guarded by mu.
type runner struct {
	store       runtime.Store
	p           Projection
	cfg         readside.Config
	consumes    map[string]struct{} // nil: everything
	exactlyOnce bool

	position   atomic.Uint64
	checkpoint atomic.Uint64
	handled    atomic.Uint64
	rebuilds   atomic.Uint64
	waiters    atomic.Int64

	leaser    lease.Leaser // nil: unleased
	holder    string
	part      *Partition    // the partition of a split projection, nil if not split
	pset      *partitionSet // shared by the partitions, nil without leases
	metrics   Metrics
	tracer    telemetry.Tracer // nil: no spans
	head      atomic.Uint64    // the store's head as last seen
	eventTime atomic.Int64     // Unix nanoseconds of the last event processed, 0: none yet

	mu        sync.Mutex
	state     State
	lastErr   error
	session   *readside.Session // the lease held while running
	lease     lease.Lease       // the lease as last seen
	notify    chan struct{}     // closed and replaced on progress (when waited for) and state changes
	cancelSub context.CancelFunc
	accepting bool         // a group goroutine serves rebuild requests
	pending   []chan error // rebuild requests not yet served
	wake      chan struct{}
}

func newRunner(store runtime.Store, p Projection, cfg readside.Config) *runner {
	r := &runner{
		store:       store,
		p:           p,
		cfg:         cfg,
		exactlyOnce: p.Position != nil,
		notify:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
		holder:      cfg.Holder(),
		metrics:     readSideMetricsOf(store),
		tracer:      readside.TracerOf(store),
	}
	if l, ok := lease.Of(store); ok && !cfg.NoLease {
		r.leaser = l
	}
	if p.Events != nil {
		r.consumes = make(map[string]struct{}, len(p.Events))
		for _, e := range p.Events {
			r.consumes[e] = struct{}{}
		}
	}
	return r
}

// share returns the partition set the runner's lease counts in, if any.
func (r *runner) share() readside.Share {
	if r.pset == nil {
		return nil
	}
	return r.pset
}

// broadcastLocked wakes WaitFor callers. r.mu must be held.
func (r *runner) broadcastLocked() {
	close(r.notify)
	r.notify = make(chan struct{})
}

func (r *runner) setState(s State, err error) {
	r.mu.Lock()
	r.state, r.lastErr = s, err
	r.broadcastLocked()
	r.mu.Unlock()
	r.observe()
}

// observe reports the runner's progress to the read-side metrics.
func (r *runner) observe() {
	if r.metrics == nil {
		return
	}
	r.mu.Lock()
	state := r.state
	r.mu.Unlock()
	pos, head := r.position.Load(), r.head.Load()
	p := Progress{Name: r.p.Name, Position: pos, Head: max(head, pos), State: state}
	if t := r.eventTime.Load(); t != 0 {
		p.EventTime = time.Unix(0, t).UTC()
	}
	p.Lag = p.Head - pos
	r.metrics.ObserveProjection(p)
}

// seenHead records a reading of the store's head.
func (r *runner) seenHead(h uint64) {
	for {
		old := r.head.Load()
		if h <= old || r.head.CompareAndSwap(old, h) {
			return
		}
	}
}

// setSession records the lease session the runner works under (nil when
// it ends).
func (r *runner) setSession(s *readside.Session) {
	r.mu.Lock()
	if r.session != nil {
		r.lease = r.session.Lease()
	}
	r.session = s
	if s != nil {
		r.lease = s.Lease()
	}
	r.mu.Unlock()
}

// standby records that the lease could not be taken: another holds it
// (other), or the store is unavailable (err).
func (r *runner) standby(other lease.Lease, err error) {
	r.mu.Lock()
	if errors.Is(err, lease.ErrHeld) {
		r.state, r.lastErr = Standby, nil
		if other.Holder != "" { // "" when a partition is held back for the fair share
			r.lease = other
		}
	} else {
		r.state, r.lastErr = Waiting, err
	}
	r.broadcastLocked()
	r.mu.Unlock()
	r.observe()
}

// saveCheckpoint saves a checkpoint, fenced by the lease when the runner
// holds one.
func (r *runner) saveCheckpoint(ctx context.Context, name string, pos uint64) error {
	r.mu.Lock()
	s := r.session
	r.mu.Unlock()
	if s == nil {
		return r.store.SaveCheckpoint(ctx, name, pos)
	}
	return s.SaveCheckpoint(ctx, name, pos)
}

// progress publishes a new position.
func (r *runner) progress(pos uint64) {
	r.position.Store(pos)
	if r.waiters.Load() > 0 {
		r.mu.Lock()
		r.broadcastLocked()
		r.mu.Unlock()
	}
}

func (r *runner) status(head uint64) Status {
	r.mu.Lock()
	st := Status{Name: r.p.Name, State: r.state, LastError: r.lastErr, ExactlyOnce: r.exactlyOnce, Lease: r.lease}
	if r.session != nil {
		st.Lease = r.session.Lease()
	}
	r.mu.Unlock()
	st.Position = r.position.Load()
	st.Checkpoint = r.checkpoint.Load()
	st.Handled = r.handled.Load()
	st.Rebuilds = r.rebuilds.Load()
	st.Head = head
	if head > st.Position {
		st.Lag = head - st.Position
	}
	return st
}

func (r *runner) fail(pos uint64, err error) *Error {
	return &Error{Projection: r.p.Name, Position: pos, Err: err}
}

// start finds where to resume: the projection's own position
// (exactly-once) or the stored checkpoint, finishing a rebuild that a crash
// interrupted first.
func (r *runner) start(ctx context.Context) (uint64, error) {
	if r.exactlyOnce {
		pos, err := r.p.Position(ctx)
		if err != nil {
			return 0, fmt.Errorf("reading the projection's position: %w", err)
		}
		return pos, nil
	}
	if h, err := r.store.Head(ctx); err == nil {
		r.seenHead(h)
	}
	marker, err := r.store.LoadCheckpoint(ctx, rebuildMarker(r.p.Name))
	switch {
	case errors.Is(err, runtime.ErrNotFound):
	case err != nil:
		return 0, err
	case marker != 0:
		if err := r.finishRebuild(ctx); err != nil {
			return 0, err
		}
		return 0, nil
	}
	pos, err := r.store.LoadCheckpoint(ctx, r.p.Name)
	if errors.Is(err, runtime.ErrNotFound) {
		return 0, nil
	}
	return pos, err
}

// rebuild resets the read model and its checkpoint to zero. The caller
// replays afterwards. In at-least-once mode a marker checkpoint makes the
// three steps crash-safe: a start that finds it set resets again before
// replaying, so no event is ever applied on top of old state.
func (r *runner) rebuild(ctx context.Context) error {
	if r.p.Reset == nil {
		return fmt.Errorf("%w: projection %q has no Reset method, so it cannot be rebuilt", runtime.ErrInvalid, r.p.Name)
	}
	if r.exactlyOnce {
		if err := r.p.Reset(ctx); err != nil {
			return fmt.Errorf("cqrsgen: resetting projection %q: %w", r.p.Name, err)
		}
		pos, err := r.p.Position(ctx)
		if err != nil {
			return fmt.Errorf("cqrsgen: reading the position of projection %q after Reset: %w", r.p.Name, err)
		}
		if pos != 0 {
			return fmt.Errorf("%w: projection %q is at position %d after Reset; Reset must set it to 0", runtime.ErrInvalid, r.p.Name, pos)
		}
	} else {
		if err := r.saveCheckpoint(ctx, rebuildMarker(r.p.Name), 1); err != nil {
			return fmt.Errorf("cqrsgen: starting the rebuild of projection %q: %w", r.p.Name, err)
		}
		if err := r.finishRebuild(ctx); err != nil {
			return err
		}
	}
	r.position.Store(0)
	r.checkpoint.Store(0)
	r.rebuilds.Add(1)
	r.progress(0)
	return nil
}

// rebuildLeased is rebuild for a group that is not running: on a store
// with leases it takes the projection's lease for the duration, so that no
// other process runs the projection meanwhile, and refuses with an error
// matching lease.ErrHeld when another process holds it.
func (r *runner) rebuildLeased(ctx context.Context) error {
	if r.leaser == nil {
		return r.rebuild(ctx)
	}
	l, err := r.leaser.AcquireLease(ctx, r.p.Name, r.holder, r.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("cqrsgen: rebuilding projection %q: %w (holder %s)", r.p.Name, err, l.Holder)
	}
	s := readside.Held(r.leaser, r.cfg.LeaseTTL, l)
	r.setSession(s)
	defer func() {
		r.setSession(nil)
		_ = r.leaser.ReleaseLease(context.WithoutCancel(ctx), l)
	}()
	return r.rebuild(lease.NewContext(ctx, l))
}

// finishRebuild is the part of an at-least-once rebuild after the marker
// is set.
func (r *runner) finishRebuild(ctx context.Context) error {
	if r.p.Reset == nil {
		return fmt.Errorf("%w: projection %q has an unfinished rebuild but no Reset method", runtime.ErrInvalid, r.p.Name)
	}
	if err := r.p.Reset(ctx); err != nil {
		return fmt.Errorf("cqrsgen: resetting projection %q: %w", r.p.Name, err)
	}
	if err := r.saveCheckpoint(ctx, r.p.Name, 0); err != nil {
		return fmt.Errorf("cqrsgen: zeroing the checkpoint of projection %q: %w", r.p.Name, err)
	}
	if err := r.saveCheckpoint(ctx, rebuildMarker(r.p.Name), 0); err != nil {
		return fmt.Errorf("cqrsgen: finishing the rebuild of projection %q: %w", r.p.Name, err)
	}
	return nil
}

// serve performs the pending rebuild requests, if any, and answers them.
func (r *runner) serve(ctx context.Context) error {
	r.mu.Lock()
	reqs := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(reqs) == 0 {
		return nil
	}
	err := r.rebuild(ctx)
	if err == nil {
		// Clear a failure before answering, so that a caller of Rebuild
		// never sees the old error once it returns.
		r.setState(Running, nil)
	}
	for _, reply := range reqs {
		reply <- err
	}
	if err != nil {
		return r.fail(r.position.Load(), err)
	}
	return nil
}

// run processes the log from the projection's checkpoint until ctx is done
// (nil), a rebuild is requested (errInterrupted), or it fails (a
// *Error).
func (r *runner) run(ctx context.Context) error {
	if err := r.serve(ctx); err != nil {
		return err
	}
	pos, err := r.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return r.fail(0, err)
	}
	r.checkpoint.Store(pos)
	r.progress(pos)
	r.setState(Running, nil)

	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.cancelSub = cancel
	interrupted := len(r.pending) > 0
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.cancelSub = nil
		r.mu.Unlock()
	}()
	if interrupted {
		return errInterrupted
	}

	saved, unsaved, lastSave := pos, 0, time.Now()
	save := func(ctx context.Context) error {
		if r.exactlyOnce || pos == saved {
			return nil
		}
		if err := r.saveCheckpoint(ctx, r.p.Name, pos); err != nil {
			return r.fail(pos, fmt.Errorf("saving checkpoint: %w", err))
		}
		saved, unsaved, lastSave = pos, 0, time.Now()
		r.checkpoint.Store(pos)
		r.observe()
		return nil
	}
	// checkpointNow saves the checkpoint; when ctx ends meanwhile, the run
	// stops cleanly, still saving it.
	checkpointNow := func() error {
		err := save(ctx)
		if err != nil && ctx.Err() != nil {
			return save(context.WithoutCancel(ctx))
		}
		return err
	}
	// stop ends the run after sub is done: cleanly when ctx is done (the
	// checkpoint is saved even so), for a rebuild, or on a store failure.
	stop := func(cause error) error {
		switch {
		case ctx.Err() != nil:
			return save(context.WithoutCancel(ctx))
		case sub.Err() != nil:
			return errInterrupted
		}
		if err := save(ctx); err != nil {
			return err
		}
		return r.fail(pos, cause)
	}

	deleted := map[runtime.StreamID]bool{} // see SkipDeletedStreams
	for {
		for rec, err := range r.store.ReadAll(sub, pos) {
			if err != nil {
				return stop(err)
			}
			if sub.Err() != nil {
				return stop(sub.Err())
			}
			if rec.Position <= pos {
				continue // never deliver a position twice
			}
			want := r.wants(rec)
			if want && r.cfg.SkipDeleted {
				if want, err = r.liveRecord(sub, deleted, rec); err != nil {
					return stop(err)
				}
			}
			if want {
				if err := r.handle(ctx, sub, rec); err != nil {
					if errors.Is(err, errInterrupted) {
						return err
					}
					if serr := checkpointNow(); serr != nil || ctx.Err() != nil {
						return serr
					}
					return err
				}
				r.handled.Add(1)
				if r.exactlyOnce {
					r.checkpoint.Store(rec.Position)
				}
			}
			pos = rec.Position
			if !rec.Time.IsZero() {
				r.eventTime.Store(rec.Time.UnixNano())
			}
			r.progress(pos)
			unsaved++
			if (r.cfg.CheckpointEvents > 0 && unsaved >= r.cfg.CheckpointEvents) ||
				(r.cfg.CheckpointInterval > 0 && time.Since(lastSave) >= r.cfg.CheckpointInterval) {
				if err := checkpointNow(); err != nil || ctx.Err() != nil {
					return err
				}
			}
		}
		// Caught up: make the checkpoint durable before waiting.
		if err := checkpointNow(); err != nil || ctx.Err() != nil {
			return err
		}
		r.observe()
		h, err := r.store.Wait(sub, pos)
		if err != nil {
			return stop(err)
		}
		r.seenHead(h)
	}
}

func (r *runner) wants(rec runtime.Record) bool {
	if r.part != nil && PartitionOf(rec.Stream, r.part.Count) != r.part.Index {
		return false
	}
	if r.consumes == nil || (r.cfg.OnDeleted != nil && runtime.IsTombstone(rec)) {
		return true
	}
	_, ok := r.consumes[rec.Name]
	return ok
}

// handle calls Handle with retries. It returns nil once the record is
// applied, ctx's error when ctx ends the retrying, errInterrupted when a
// rebuild request (sub done) cuts a back-off short, or a *Error.
func (r *runner) handle(ctx, sub context.Context, rec runtime.Record) error {
	outages := 0
	for attempt := 1; ; attempt++ {
		err := r.call(ctx, rec)
		if err == nil {
			if outages > 0 {
				r.setState(Running, nil)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		delay := retryDelayFor(&r.cfg, attempt)
		if errors.Is(err, runtime.ErrUnavailable) {
			// The read model's store is down: wait for it, without using
			// up the attempts meant for the handler's own errors.
			r.setState(Waiting, err)
			delay = retry.UnavailableDelay(outages)
			outages++
			attempt--
		} else if attempt >= r.cfg.Attempts || errors.Is(err, runtime.ErrCorrupt) || errors.Is(err, lease.ErrLost) {
			return &Error{Projection: r.p.Name, Position: rec.Position, Stream: rec.Stream,
				Version: rec.Version, Event: rec.Name, Attempts: attempt, Err: err}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-sub.Done():
			t.Stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errInterrupted
		case <-t.C:
		}
		if r.exactlyOnce {
			// The failed call may have committed before it failed (a lost
			// commit acknowledgement): trust the projection's position.
			if p, perr := r.p.Position(ctx); perr == nil && p >= rec.Position {
				return nil
			}
		}
	}
}

// call calls Handle once, under a context caused by rec (and in a span
// when there is a tracer).
func (r *runner) call(ctx context.Context, rec runtime.Record) error {
	rec, err := runtime.OpenRecordFrom(ctx, r.store, rec)
	if err != nil {
		return err
	}
	ctx = runtime.ContextCausedBy(ctx, rec)
	if r.tracer == nil {
		return r.dispatch(ctx, rec)
	}
	ctx, span := r.tracer.Start(ctx, telemetry.SpanStart{Kind: telemetry.SpanProjection, Name: r.p.Name, Stream: telemetry.Stream(rec.Stream),
		Event: rec.Name, Version: rec.Version, Position: rec.Position, Cause: rec.Metadata})
	err = r.dispatch(ctx, rec)
	span.End(err)
	return err
}

// waitFor blocks until the projection has processed position, fails, or
// ctx is done.
func (r *runner) waitFor(ctx context.Context, position uint64) error {
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		r.mu.Lock()
		// Only a failure of the Run in progress counts: a failure left by an
		// earlier Run is forgotten when the next one starts, so a caller
		// that starts Run and waits at once must not see it.
		ch, state, lastErr := r.notify, r.state, r.lastErr
		failed := state == Failed && r.accepting
		r.mu.Unlock()
		if r.position.Load() >= position {
			return nil
		}
		if failed {
			return lastErr
		}
		var poll *time.Timer
		if state == Standby {
			// Another process runs the projection: ask the store.
			ok, err := r.reachedElsewhere(ctx, position)
			switch {
			case ok:
				return nil
			case err != nil && !errors.Is(err, runtime.ErrUnavailable) && ctx.Err() == nil:
				return fmt.Errorf("cqrsgen: waiting for projection %q to reach position %d: %w", r.p.Name, position, err)
			}
			poll = time.NewTimer(standbyPoll)
		} else {
			poll = time.NewTimer(time.Hour) // never fires: woken by ch
		}
		select {
		case <-ctx.Done():
			poll.Stop()
			return fmt.Errorf("cqrsgen: waiting for projection %q to reach position %d: %w", r.p.Name, position, ctx.Err())
		case <-ch:
		case <-poll.C:
		}
		poll.Stop()
	}
}

// standbyPoll is how often WaitFor on a standby asks the store how far the
// lease holder has got.
const standbyPoll = 50 * time.Millisecond

// reachedElsewhere reports whether the holder of the projection's lease,
// in another process, has processed position: its saved checkpoint
// (at-least-once) is there, or the read model's committed position
// (exactly-once) is there or only records the projection does not consume
// lie between them.
func (r *runner) reachedElsewhere(ctx context.Context, position uint64) (bool, error) {
	if !r.exactlyOnce {
		cp, err := r.store.LoadCheckpoint(ctx, r.p.Name)
		if errors.Is(err, runtime.ErrNotFound) {
			return position == 0, nil
		}
		return err == nil && cp >= position, err
	}
	p, err := r.p.Position(ctx)
	if err != nil || p >= position {
		return err == nil, err
	}
	last := p
	for rec, err := range r.store.ReadAll(ctx, p) {
		if err != nil {
			return false, err
		}
		if rec.Position > position {
			break
		}
		if r.wants(rec) {
			return false, nil
		}
		last = rec.Position
	}
	return last >= position, nil
}

// inProcess holds the names of the projections running in this process,
// per store, so that two runners never share a checkpoint.
var inProcess = struct {
	mu      sync.Mutex
	running map[registryKey]struct{}
}{running: make(map[registryKey]struct{})}

type registryKey struct {
	store runtime.Store
	name  string
}

// isComparable reports whether s can be a map key (every store shipped is a
// pointer; a store of a non-comparable type is not checked across groups).
func isComparable(s runtime.Store) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = map[runtime.Store]struct{}{s: {}}
	return true
}

// register claims names on store for this process, all or none.
func register(store runtime.Store, names []string) (release func(), err error) {
	if !isComparable(store) {
		return func() {}, nil
	}
	inProcess.mu.Lock()
	defer inProcess.mu.Unlock()
	for _, n := range names {
		if _, ok := inProcess.running[registryKey{store, n}]; ok {
			return nil, fmt.Errorf("%w: a projection named %q is already running on this store in this process", runtime.ErrInvalid, n)
		}
	}
	for _, n := range names {
		inProcess.running[registryKey{store, n}] = struct{}{}
	}
	return func() {
		inProcess.mu.Lock()
		defer inProcess.mu.Unlock()
		for _, n := range names {
			delete(inProcess.running, registryKey{store, n})
		}
	}, nil
}

// Run runs one projection on store until ctx is done, which is a
// clean stop (nil), or until it fails, returning a *Error. It
// resumes from the projection's checkpoint, processes the whole log after
// it, then follows new events as they become durable. On a store that
// implements lease.Leaser it first takes the projection's lease, standing by
// while another process holds it, and stands by again if it loses it; an
// unavailable store (runtime.ErrUnavailable) is waited out, not returned. opts override the
// defaults (CheckpointEvery, HandlerRetry). A projection of the same name
// already running on the same store in this process is an error matching
// runtime.ErrInvalid. Use a Group to run several, watch their status and
// rebuild them.
func Run(ctx context.Context, store runtime.Store, p Projection, opts ...Option) error {
	if err := p.validate(); err != nil {
		return err
	}
	cfg := defaultProjectionConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Partitions > 1 {
		return fmt.Errorf("%w: projection %q: Partitions applies to Group.Add", runtime.ErrInvalid, p.Name)
	}
	release, err := register(store, []string{p.Name})
	if err != nil {
		return err
	}
	defer release()
	r := newRunner(store, p, cfg)
	outages := 0
	for {
		before := r.position.Load()
		err = r.leasedRun(ctx)
		if !r.again(ctx, err, &outages, before) {
			break
		}
	}
	r.setState(Stopped, nil)
	return err
}

// leasedRun is run under the projection's lease when the store has leases:
// it stands by until it holds the lease, runs while it holds it, and gives
// it up when the run ends. A lost lease ends the run with an error
// matching lease.ErrLost.
func (r *runner) leasedRun(ctx context.Context) error {
	if r.leaser == nil {
		return r.run(ctx)
	}
	if r.cfg.Held != nil {
		// saga.Run holds the lease; ctx is within its tenure, and ends
		// with it.
		r.setSession(r.cfg.Held)
		defer r.setSession(nil)
		err := r.run(ctx)
		if errors.Is(err, lease.ErrLost) {
			r.cfg.Held.Lose()
		}
		return err
	}
	sess, err := readside.Acquire(ctx, r.leaser, r.metrics, r.p.Name, r.holder, r.cfg.LeaseTTL, r.share(), r.standby)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return r.fail(r.position.Load(), fmt.Errorf("acquiring the lease: %w", err))
	}
	r.setSession(sess)
	err = r.run(sess.Context())
	r.setSession(nil)
	if errors.Is(err, lease.ErrLost) {
		sess.Lose() // a fenced write found the lease gone before the renewer did
	}
	sess.Release()
	if ctx.Err() == nil && sess.Lost() {
		return fmt.Errorf("cqrsgen: projection %q: %w", r.p.Name, lease.ErrLost)
	}
	return err
}

// again decides whether a run that ended with err is followed by another:
// after a rebuild request, a lost lease (the runner stands by again), or
// the store being unavailable (after a back-off that grows while the runs
// make no progress from before).
func (r *runner) again(ctx context.Context, err error, outages *int, before uint64) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case err == nil, errors.Is(err, errInterrupted), errors.Is(err, lease.ErrLost):
		return true
	case errors.Is(err, runtime.ErrUnavailable):
		if r.position.Load() != before {
			*outages = 0
		}
		r.setState(Waiting, err)
		retry.Sleep(ctx, retry.UnavailableDelay(*outages))
		*outages++
		return true
	}
	return false
}

// Group runs several projections over one store, each in its own
// goroutine with its own subscription to the log, so that a slow or failed
// projection never delays appends or the other projections. It reports
// their status and rebuilds them. Its methods are safe for concurrent use.
type Group struct {
	store runtime.Store
	cfg   readside.Config

	mu      sync.Mutex // guards runners, order and psets
	runners map[string]*runner
	order   []*runner
	psets   []*partitionSet

	life    sync.Mutex // serialises Run's start and end with direct rebuilds
	running bool
}

// NewGroup returns an empty group over store; opts are the
// defaults for the projections added to it.
func NewGroup(store runtime.Store, opts ...Option) *Group {
	cfg := defaultProjectionConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return &Group{store: store, cfg: cfg, runners: make(map[string]*runner)}
}

// Add adds a projection to the group, with opts overriding the group's
// options. It fails with an error matching runtime.ErrInvalid when p is invalid
// (empty or reserved name, no Handle), when the group already has a
// projection of that name, or when the group is running.
func (g *Group) Add(p Projection, opts ...Option) error {
	if err := p.validate(); err != nil {
		return err
	}
	cfg := g.cfg
	for _, o := range opts {
		o(&cfg)
	}
	g.life.Lock()
	defer g.life.Unlock()
	if g.running {
		return fmt.Errorf("%w: adding projection %q to a running group", runtime.ErrInvalid, p.Name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cfg.Partitions <= 1 {
		if _, ok := g.runners[p.Name]; ok {
			return fmt.Errorf("%w: two projections named %q", runtime.ErrInvalid, p.Name)
		}
		r := newRunner(g.store, p, cfg)
		g.runners[p.Name] = r
		g.order = append(g.order, r)
		return nil
	}
	parts := partitioned(p, cfg.Partitions)
	for _, q := range parts {
		if err := q.validate(); err != nil {
			return err
		}
		if _, ok := g.runners[q.Name]; ok {
			return fmt.Errorf("%w: two projections named %q", runtime.ErrInvalid, q.Name)
		}
	}
	var set *partitionSet
	if l, ok := lease.Of(g.store); ok && !cfg.NoLease {
		set = &partitionSet{base: p.Name, n: cfg.Partitions, leaser: l, holder: cfg.Holder(), ttl: cfg.LeaseTTL}
		if err := runtime.ValidateKey("partition membership lease", set.memberName()); err != nil {
			return err
		}
		g.psets = append(g.psets, set)
	}
	for i, q := range parts {
		r := newRunner(g.store, q, cfg)
		r.part, r.pset = &Partition{Index: i, Count: cfg.Partitions}, set
		g.runners[q.Name] = r
		g.order = append(g.order, r)
	}
	return nil
}

func (g *Group) runner(name string) (*runner, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.runners[name]
	if !ok {
		return nil, fmt.Errorf("cqrsgen: projection %q: %w", name, runtime.ErrNotFound)
	}
	return r, nil
}

func (g *Group) list() []*runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*runner(nil), g.order...)
}

// Run runs every projection of the group, each in its own goroutine, until
// ctx is done; on a store that implements lease.Leaser each projection first
// takes its lease, standing by while another process holds it (see
// lease.Leaser, LeaseTTL, WithoutLease); then it waits for all of them to stop (saving their
// checkpoints) and returns. A projection that fails stops alone, in state
// Failed with its error in its status, and stays so until it is
// rebuilt (or the group is run again); the others carry on. A store that
// is unavailable (runtime.ErrUnavailable) does not fail a projection: it waits,
// in state Waiting, and resumes once the store answers. Run returns nil
// when no projection was failed at the end, else the failures joined
// (errors.Join of *Error). It returns an error matching
// runtime.ErrInvalid at once when the group is already running, or when a
// projection of one of its names is already running on the same store in
// this process.
func (g *Group) Run(ctx context.Context) error {
	runners := g.list()
	names := make([]string, len(runners))
	for i, r := range runners {
		names[i] = r.p.Name
	}
	g.life.Lock()
	if g.running {
		g.life.Unlock()
		return fmt.Errorf("%w: projection group is already running", runtime.ErrInvalid)
	}
	release, err := register(g.store, names)
	if err != nil {
		g.life.Unlock()
		return err
	}
	g.running = true
	for _, r := range runners {
		r.mu.Lock()
		r.accepting = true
		r.state, r.lastErr = Stopped, nil // forget the last Run's failure
		r.mu.Unlock()
	}
	g.mu.Lock()
	psets := slices.Clone(g.psets)
	g.mu.Unlock()
	g.life.Unlock()

	// Split projections: count this process among the members first, so
	// that the fair share is right from the start.
	for _, s := range psets {
		if err := s.join(ctx); err != nil && ctx.Err() == nil {
			for _, r := range runners {
				if r.pset == s {
					r.setState(Waiting, err)
				}
			}
		}
		defer s.leave()
	}

	var wg sync.WaitGroup
	errs := make([]error, len(runners))
	for i, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.loop(ctx)
		}()
	}
	wg.Wait()
	release()
	g.life.Lock()
	g.running = false
	g.life.Unlock()
	return errors.Join(errs...)
}

// loop is a group's goroutine for one projection: it runs it, serves
// rebuild requests, and after a failure waits for one. It returns the
// failure the projection was in when ctx ended, if any.
func (r *runner) loop(ctx context.Context) (failure error) {
	defer func() {
		r.mu.Lock()
		r.accepting = false
		for _, reply := range r.pending {
			reply <- errRetryRebuild
		}
		r.pending = nil
		if r.state != Failed {
			r.state = Stopped
		}
		r.broadcastLocked()
		r.mu.Unlock()
		r.observe()
	}()
	outages := 0
	for {
		before := r.position.Load()
		err := r.leasedRun(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if r.again(ctx, err, &outages, before) {
			continue
		}
		r.setState(Failed, err)
		for {
			select {
			case <-ctx.Done():
				return err
			case <-r.wake:
			}
			r.mu.Lock()
			n := len(r.pending)
			r.mu.Unlock()
			if n > 0 {
				break
			}
		}
	}
}

// Rebuild rebuilds the named projection: it empties the read model (the
// projection's Reset), sets its checkpoint to zero and replays the whole
// log, so that the result equals a read model built once, with no event
// applied on top of old state. A projection without Reset is refused with
// an error matching runtime.ErrInvalid; an unknown name matches runtime.ErrNotFound. A
// projection split with Partitions is rebuilt partition by partition, by
// the partitions' names (PartitionName); its own name is refused with an
// error matching runtime.ErrInvalid that says so.
//
// With leases, only the process holding the projection's lease rebuilds
// it: on a running group a standby serves the request once it takes the
// lease; a group that is not running takes the lease for the rebuild and
// fails with lease.ErrHeld when another process holds it.
//
// When the group is running, the projection's own goroutine does the work
// between two records (so Reset never runs concurrently with Handle) and
// Rebuild returns once the reset is done and the replay has begun; a failed
// projection is restarted this way. Use WaitFor to wait for the replay.
// When the group is not running, Rebuild resets the read model and the
// checkpoint itself and the replay happens on the next Run.
//
// If ctx is done first, Rebuild returns its error; a request already
// handed to the running projection is still carried out.
func (g *Group) Rebuild(ctx context.Context, name string) error {
	if parts := g.splitRunners(name); parts != nil {
		return errRebuildSplit(name, parts)
	}
	r, err := g.runner(name)
	if err != nil {
		return err
	}
	if r.p.Reset == nil {
		return fmt.Errorf("%w: projection %q has no Reset method, so it cannot be rebuilt", runtime.ErrInvalid, name)
	}
	for {
		g.life.Lock()
		r.mu.Lock()
		if !r.accepting {
			r.mu.Unlock()
			err := r.rebuildLeased(ctx)
			if err == nil {
				r.setState(Stopped, nil)
			}
			g.life.Unlock()
			return err
		}
		reply := make(chan error, 1)
		r.pending = append(r.pending, reply)
		cancel := r.cancelSub
		r.mu.Unlock()
		g.life.Unlock()
		if cancel != nil {
			cancel()
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
		select {
		case err := <-reply:
			if errors.Is(err, errRetryRebuild) {
				continue
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("cqrsgen: rebuilding projection %q: %w", name, ctx.Err())
		}
	}
}

// Status returns the named projection's status, with Head and Lag taken
// from the store now. An unknown name matches runtime.ErrNotFound; if the store's
// head cannot be read the status is returned with the error, Head and Lag
// left at 0.
func (g *Group) Status(ctx context.Context, name string) (Status, error) {
	r, err := g.runner(name)
	if err != nil {
		return Status{}, err
	}
	head, err := g.store.Head(ctx)
	if err != nil {
		return r.status(0), err
	}
	return r.status(head), nil
}

// Statuses returns the status of every projection, in the order they were
// added, against one reading of the store's head (if it cannot be read the
// statuses are returned with the error, Head and Lag left at 0).
func (g *Group) Statuses(ctx context.Context) ([]Status, error) {
	head, herr := g.store.Head(ctx)
	if herr != nil {
		head = 0
	}
	runners := g.list()
	out := make([]Status, len(runners))
	for i, r := range runners {
		out[i] = r.status(head)
	}
	return out, herr
}

// WaitFor blocks until the named projection has processed every record up
// to position (read-your-writes: pass the LastPosition that runtime.ReportAppend
// or runtime.ContextWithAppendReport gave for a write), and returns nil. It
// returns the projection's error if it is or becomes failed during the
// group's current Run, and an error wrapping ctx's if ctx is done first.
// It does not start the projection: while the group is not running it
// waits for the next Run, and a failure an earlier Run ended with (still
// shown by Status) is not returned, so WaitFor right after `go
// group.Run(ctx)` answers for that Run only. On a replica standing by
// (another process holds the lease) it polls the store for the holder's
// progress: the saved checkpoint (at-least-once, saved at the latest once
// the holder has caught up) or the read model's position (exactly-once).
// For a projection split with Partitions, name may be the projection's
// own name: WaitFor then waits for every partition (or a partition's name,
// for that one).
func (g *Group) WaitFor(ctx context.Context, name string, position uint64) error {
	if parts := g.splitRunners(name); parts != nil {
		return waitForSplit(ctx, parts, position)
	}
	r, err := g.runner(name)
	if err != nil {
		return err
	}
	return r.waitFor(ctx, position)
}
