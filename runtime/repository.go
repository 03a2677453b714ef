package runtime

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime/internal/keyed"
	"github.com/cqrsgen/cqrsgen/runtime/internal/retry"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// NoCommand is the command type of an aggregate that has no commands. It
// has no values other than nil, so such an aggregate cannot Execute.
type NoCommand interface{ noCommand() }

// Aggregate describes one aggregate type to the generic Repository: its
// stream type, how events change its state, how it decides commands, and
// how its events and state are encoded. cqrsgen emits one per aggregate;
// everything here is a plain function so the generated code stays
// reflection-free.
type Aggregate[S, E, C any] struct {
	Type        string // the stable stream type name
	StateSchema string // the shape of S: snapshots under another one are ignored
	// SnapshotEvery saves a snapshot whenever a version crosses a multiple of it; 0: never.
	SnapshotEvery uint64
	// Events (registry.Events, set by generated code) provides Apply,
	// EncodeEvent and DecodeEvent where those are nil.
	Events EventTable[S, E]
	Apply  func(state *S, event E) // evolves state by one event
	// Decide turns a command into events without modifying state; nil without commands.
	Decide      func(state *S, command C) ([]E, error)
	EncodeEvent func(event E) (EventData, error) // encodes and names an event
	// DecodeEvent decodes and upcasts a stored event (else *UnknownEventError
	// or ErrRetired).
	DecodeEvent func(name string, schema uint32, data []byte) (E, error)
	// EncodeState and DecodeState encode the state for snapshots. Nil
	// disables snapshots.
	EncodeState func(state *S) ([]byte, error)
	DecodeState func(data []byte, state *S) error
}

// Repository is the typed repository of one aggregate type over a Store.
// Generated <A>Repository types wrap it. It is safe for concurrent use.
type Repository[S, E, C any] struct {
	store   Store
	agg     *Aggregate[S, E, C]
	opts    repoOptions
	locks   keyed.Mutex
	tracer  telemetry.Tracer         // nil: no spans
	metrics telemetry.CommandMetrics // nil: no command metrics
	// visitor is the store's StreamVisitor, which Load uses when the
	// aggregate has an event table and no fields tagged pii; nil:
	// ReadStream.
	visitor StreamVisitor
}

// NewRepository returns a repository of agg's aggregates stored in store.
func NewRepository[S, E, C any](store Store, agg *Aggregate[S, E, C], opts ...Option) *Repository[S, E, C] {
	if t := agg.Events; t != nil {
		a := *agg
		if a.Apply == nil {
			a.Apply = t.Apply
		}
		if a.EncodeEvent == nil {
			a.EncodeEvent = t.Encode
		}
		if a.DecodeEvent == nil {
			a.DecodeEvent = t.Decode
		}
		agg = &a
	}
	o := repoOptions{retries: DefaultRetries, now: time.Now, snapshotEvery: agg.SnapshotEvery}
	for _, opt := range opts {
		opt(&o)
	}
	if agg.EncodeState == nil || agg.DecodeState == nil {
		o.snapshotEvery = 0
	}
	rep := &Repository[S, E, C]{store: store, agg: agg, opts: o, tracer: tracerOf(store), metrics: commandMetricsOf(store)}
	if agg.Events != nil && !rep.sealing() { // sealed records are opened first: ReadStream
		rep.visitor = visitorOf(store)
	}
	return rep
}

// Store returns the store the repository reads and writes.
func (r *Repository[S, E, C]) Store() Store { return r.store }

// Stream returns the stream id of the aggregate with the given id.
func (r *Repository[S, E, C]) Stream(id string) StreamID {
	return StreamID{Type: r.agg.Type, ID: id}
}

// Load returns the current state of aggregate id and its version: the
// latest usable snapshot plus the events after it. A missing aggregate is
// the zero state at version 0 with a nil error; a deleted one (see
// lifecycle.DeleteStream) fails with a *DeletedError (ErrStreamDeleted).
func (r *Repository[S, E, C]) Load(ctx context.Context, id string) (*S, uint64, error) {
	if r.tracer == nil {
		return r.load(ctx, id)
	}
	ctx, span := r.tracer.Start(ctx, telemetry.SpanStart{Kind: telemetry.SpanLoad, Stream: telemetry.Stream(r.Stream(id))})
	state, v, err := r.load(ctx, id)
	span.End(err)
	return state, v, err
}

func (r *Repository[S, E, C]) load(ctx context.Context, id string) (*S, uint64, error) {
	stream := r.Stream(id)
	if err := ValidateStream(stream); err != nil {
		return nil, 0, err
	}
	state, version := r.loadSnapshot(ctx, stream)
	if r.visitor != nil {
		version, err := visitLoad(ctx, r.visitor, r.agg.Events, stream, state, version)
		if err != nil {
			return nil, 0, err
		}
		return state, version, nil
	}
	open := r.opener(ctx)
	for rec, err := range r.store.ReadStream(ctx, stream, version) {
		if err == nil {
			rec, err = open(rec)
		}
		if err != nil {
			return nil, 0, err
		}
		if IsTombstone(rec) {
			return nil, 0, deleted(rec)
		}
		if err := r.evolve(state, rec); err != nil {
			if errors.Is(err, ErrRetired) {
				version = rec.Version // retired: skipped, but its version counts
				continue
			}
			return nil, 0, err
		}
		version = rec.Version
	}
	return state, version, nil
}

// loadSnapshot returns the state from the stream's snapshot when there is a
// usable one, else the zero state at version 0. A snapshot that cannot be
// used (other schema, undecodable) is reported to the error handler and
// ignored: events are the source of truth.
func (r *Repository[S, E, C]) loadSnapshot(ctx context.Context, stream StreamID) (*S, uint64) {
	state := new(S)
	if r.agg.DecodeState == nil {
		return state, 0
	}
	snap, err := r.store.LoadSnapshot(ctx, stream)
	switch {
	case errors.Is(err, ErrNotFound):
		return state, 0
	case err != nil:
		r.report(wrapf(err, "loading snapshot of %s (rebuilding from events)", stream))
		return state, 0
	case snap.Schema != r.agg.StateSchema:
		return state, 0
	}
	if r.sealing() {
		keys, _ := KeysOf(r.store)
		if snap.Data, err = openSnapshot(ctx, keys, stream, snap.Data); err != nil {
			if !errors.Is(err, errSnapshotKey) {
				r.report(&DecodeError{Stream: stream, Version: snap.Version, What: "snapshot", Err: err})
			}
			return state, 0
		}
	}
	if err := r.agg.DecodeState(snap.Data, state); err != nil {
		r.report(&DecodeError{Stream: stream, Version: snap.Version, What: "snapshot", Err: err})
		return new(S), 0
	}
	return state, snap.Version
}

func (r *Repository[S, E, C]) report(err error) {
	if r.opts.onError != nil {
		r.opts.onError(err)
	}
}

// evolve decodes rec and applies it to state: in one step through the
// event table when there is one, else through DecodeEvent and Apply.
func (r *Repository[S, E, C]) evolve(state *S, rec Record) error {
	if t := r.agg.Events; t != nil {
		if err := t.Evolve(state, rec.Name, rec.Schema, rec.Data); err != nil {
			return &DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "event " + rec.Name, Err: err}
		}
		return nil
	}
	e, err := r.decode(rec)
	if err != nil {
		return err
	}
	r.agg.Apply(state, e)
	return nil
}

func (r *Repository[S, E, C]) decode(rec Record) (E, error) {
	e, err := r.agg.DecodeEvent(rec.Name, rec.Schema, rec.Data)
	if err != nil {
		var zero E
		return zero, &DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "event " + rec.Name, Err: err}
	}
	return e, nil
}

// Append appends events atomically to aggregate id if its version is expected
// and returns the new version (else a *ConflictError). Metadata from ctx
// (ContextWithMetadata, …) goes on every event; see ContextWithAppendReport.
func (r *Repository[S, E, C]) Append(ctx context.Context, id string, expected uint64, events ...E) (uint64, error) {
	stream := r.Stream(id)
	res, err := r.append(ctx, stream, expected, events, eventMetadata(ctx, nil), "")
	if err != nil {
		return 0, err
	}
	if rep := appendReport(ctx); rep != nil {
		*rep = res
	}
	if r.crossesSnapshot(res.FirstVersion-1, res.LastVersion) {
		// The caller holds no state: rebuild it (snapshot + tail) once per
		// snapshot interval, and save it.
		if state, v, err := r.Load(ctx, id); err != nil {
			r.report(err)
		} else {
			r.saveSnapshot(ctx, stream, state, v)
		}
	}
	return res.LastVersion, nil
}

func (r *Repository[S, E, C]) append(ctx context.Context, stream StreamID, expected uint64, events []E, md map[string]string, key string) (AppendResult, error) {
	if r.tracer == nil {
		return r.appendEvents(ctx, stream, expected, events, md, key)
	}
	ctx, span := r.tracer.Start(ctx, telemetry.SpanStart{Kind: telemetry.SpanAppend, Stream: telemetry.Stream(stream)})
	res, err := r.appendEvents(ctx, stream, expected, events, traceMetadata(ctx, r.tracer, md), key)
	span.End(err)
	return res, err
}

// appendEvents encodes and appends events with md (which already holds
// the trace context, when there is a tracer).
func (r *Repository[S, E, C]) appendEvents(ctx context.Context, stream StreamID, expected uint64, events []E, md map[string]string, key string) (AppendResult, error) {
	if len(events) == 0 {
		return AppendResult{}, fmt.Errorf("%w: append to %s with no events", ErrInvalid, stream)
	}
	now := r.opts.now().UTC()
	data := make([]EventData, len(events))
	var sealer *Sealer
	for i, e := range events {
		d, err := r.encodeEvent(ctx, stream, e, &sealer)
		if err != nil {
			return AppendResult{}, wrapf(err, "encoding event %d for %s", i, stream)
		}
		d.Time = now
		if len(md) > 0 {
			d.Metadata = md
		}
		data[i] = d
	}
	return r.store.Append(ctx, AppendRequest{Stream: stream, Expected: expected, Events: data, IdempotencyKey: key})
}

func (r *Repository[S, E, C]) crossesSnapshot(from, to uint64) bool {
	n := r.opts.snapshotEvery
	return n > 0 && to/n > from/n
}

func (r *Repository[S, E, C]) saveSnapshot(ctx context.Context, stream StreamID, state *S, version uint64) {
	data, err := r.agg.EncodeState(state)
	if err == nil && r.sealing() {
		keys, _ := KeysOf(r.store)
		data, err = sealSnapshot(ctx, keys, stream, data)
	}
	if err != nil {
		r.report(wrapf(err, "encoding snapshot of %s at version %d", stream, version))
		return
	}
	err = r.store.SaveSnapshot(ctx, Snapshot{Stream: stream, Version: version, Schema: r.agg.StateSchema, Data: data, Time: r.opts.now().UTC()})
	if err != nil {
		r.report(wrapf(err, "saving snapshot of %s at version %d", stream, version))
	}
}

// Execute runs command c against aggregate id: load, decide, append with the
// loaded version (conflicts retried; commands on one id serialised), and return
// the new version (the current one if c decides no events). A Handle error is
// returned as is and appends nothing. See IdempotencyKey and docs/guide.md,
// "Optimistic concurrency".
func (r *Repository[S, E, C]) Execute(ctx context.Context, id string, c C, opts ...ExecOption) (uint64, error) {
	if r.tracer == nil && r.metrics == nil {
		v, _, err := r.execute(ctx, id, c, opts)
		return v, err
	}
	var span telemetry.Span
	if r.tracer != nil {
		ctx, span = r.tracer.Start(ctx, telemetry.SpanStart{Kind: telemetry.SpanExecute, Stream: telemetry.Stream(r.Stream(id)), Command: fmt.Sprintf("%T", c)})
	}
	start := time.Now()
	v, res, err := r.execute(ctx, id, c, opts)
	if span != nil {
		span.End(err)
	}
	if r.metrics != nil {
		r.metrics.ObserveCommand(telemetry.CommandCall{StreamType: r.agg.Type, Outcome: res.outcome, Retries: res.retries,
			Duration: time.Since(start), Err: err})
	}
	return v, err
}

// executed is how an execute ended, for telemetry.CommandMetrics.
type executed struct {
	outcome telemetry.CommandOutcome
	retries int
}

func (r *Repository[S, E, C]) execute(ctx context.Context, id string, c C, opts []ExecOption) (uint64, executed, error) {
	v, res, err := r.decideAndAppend(ctx, id, c, opts)
	if res.outcome == "" {
		switch {
		case err == nil:
			res.outcome = telemetry.CommandOK
		case errors.Is(err, ErrConflict):
			res.outcome = telemetry.CommandConflict
		default:
			res.outcome = telemetry.CommandError
		}
	}
	return v, res, err
}

func (r *Repository[S, E, C]) decideAndAppend(ctx context.Context, id string, c C, opts []ExecOption) (uint64, executed, error) {
	if r.agg.Decide == nil {
		return 0, executed{}, fmt.Errorf("%w: aggregate %s has no commands", ErrInvalid, r.agg.Type)
	}
	var o execOptions
	for _, opt := range opts {
		opt(&o)
	}
	stream := r.Stream(id)
	if err := ValidateStream(stream); err != nil {
		return 0, executed{}, err
	}
	// done and dup finish the call as a plain result or the replay of an
	// idempotency key's first one.
	retries := 0
	done := func(v uint64, err error) (uint64, executed, error) { return v, executed{retries: retries}, err }
	dup := func(v uint64, err error) (uint64, executed, error) {
		return v, executed{outcome: telemetry.CommandDuplicate, retries: retries}, err
	}
	if o.key != "" {
		if err := ValidateKey("idempotency key", o.key); err != nil {
			return done(0, err)
		}
		rec, err := r.store.LoadIdempotency(ctx, o.key)
		switch {
		case err == nil:
			return dup(r.reported(ctx, stream, o.report)(idempotentResult(stream, rec)))
		case !errors.Is(err, ErrNotFound):
			return done(0, err)
		}
	}
	md := eventMetadata(ctx, o.metadata)

	unlock := r.locks.Lock(id)
	defer unlock()
	for attempt := 0; ; attempt++ {
		state, version, err := r.Load(ctx, id)
		if err != nil {
			return done(0, err)
		}
		events, err := r.agg.Decide(state, c)
		if err != nil {
			return 0, executed{outcome: telemetry.CommandRejected, retries: retries}, err
		}
		if len(events) == 0 {
			if o.key != "" {
				err := r.store.SaveIdempotency(ctx, IdempotencyRecord{Key: o.key, Stream: stream, Version: version, Time: r.opts.now().UTC()})
				if dupErr := (*DuplicateError)(nil); errors.As(err, &dupErr) {
					return dup(r.reported(ctx, stream, o.report)(idempotentResult(stream, dupErr.Existing)))
				} else if err != nil {
					return done(0, err)
				}
			}
			return done(r.reported(ctx, stream, o.report)(version, nil))
		}
		res, err := r.append(ctx, stream, version, events, md, o.key)
		if err == nil {
			if r.crossesSnapshot(version, res.LastVersion) {
				for _, e := range events {
					r.agg.Apply(state, e)
				}
				r.saveSnapshot(ctx, stream, state, res.LastVersion)
			}
			if o.report != nil {
				*o.report = res
			}
			return done(res.LastVersion, nil)
		}
		if dupErr := (*DuplicateError)(nil); errors.As(err, &dupErr) {
			return dup(r.reported(ctx, stream, o.report)(idempotentResult(stream, dupErr.Existing)))
		}
		if !errors.Is(err, ErrConflict) || attempt >= r.opts.retries {
			return done(0, err)
		}
		if err := retry.Backoff(ctx, attempt); err != nil {
			return done(0, err)
		}
		retries++
	}
}

// idempotentResult returns the first result recorded under a key, or an
// error when the key was used for another stream (a key names one
// operation; reusing it elsewhere is a bug the caller must hear about).
func idempotentResult(stream StreamID, rec IdempotencyRecord) (uint64, error) {
	if rec.Stream != stream {
		return 0, &DuplicateError{Existing: rec}
	}
	return rec.Version, nil
}

// reported returns a function that, when Execute succeeds at version
// without appending anything itself, fills rep (if not nil) with that
// version and the position of its event (see ReportAppend).
func (r *Repository[S, E, C]) reported(ctx context.Context, stream StreamID, rep *AppendResult) func(uint64, error) (uint64, error) {
	return func(version uint64, err error) (uint64, error) {
		if err != nil || rep == nil {
			return version, err
		}
		res := AppendResult{LastVersion: version}
		if version > 0 {
			for rec, err := range r.store.ReadStream(ctx, stream, version-1) {
				if err != nil {
					return 0, fmt.Errorf("cqrsgen: reading the position of %s version %d: %w", stream, version, err)
				}
				res.LastPosition = rec.Position
				break
			}
		}
		*rep = res
		return version, nil
	}
}

// Events yields the events of aggregate id with version > after, in order,
// skipping retired ones; a *DecodeError or, after a soft delete's kept events,
// a *DeletedError ends the sequence.
func (r *Repository[S, E, C]) Events(ctx context.Context, id string, after uint64) iter.Seq2[Envelope[E], error] {
	return func(yield func(Envelope[E], error) bool) {
		stream := r.Stream(id)
		if err := ValidateStream(stream); err != nil {
			yield(Envelope[E]{}, err)
			return
		}
		open := r.opener(ctx)
		for rec, err := range r.store.ReadStream(ctx, stream, after) {
			if err == nil {
				rec, err = open(rec)
			}
			if err != nil {
				yield(Envelope[E]{}, err)
				return
			}
			if IsTombstone(rec) {
				yield(Envelope[E]{}, deleted(rec))
				return
			}
			e, err := r.decode(rec)
			if errors.Is(err, ErrRetired) {
				continue
			}
			if err != nil {
				yield(Envelope[E]{}, err)
				return
			}
			if !yield(EnvelopeOf(rec, e), nil) {
				return
			}
		}
	}
}

// EnvelopeOf wraps a decoded event with its record's envelope fields.
func EnvelopeOf[E any](rec Record, e E) Envelope[E] {
	return Envelope[E]{
		ID: rec.Stream.ID, Type: rec.Stream.Type, Version: rec.Version, Position: rec.Position,
		EventID: rec.EventID, Time: rec.Time, Name: rec.Name, Schema: rec.Schema, Event: e, Metadata: rec.Metadata,
	}
}
