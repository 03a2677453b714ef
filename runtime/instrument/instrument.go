// Package instrument wraps any runtime.Store so that every call is
// reported to Metrics (metrics/prometheus adapts them to Prometheus) and,
// optionally, logged through log/slog; with WithTracer, repositories and
// the projection and saga runners over the wrapped store start spans
// (trace/otelcqrs adapts OpenTelemetry). The wrapper adds no behaviour,
// and keeps the wrapped store's runtime.StreamVisitor: Repository.Load
// reads through Store.VisitStream, reported as a ReadStream.
package instrument

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/storekit"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// Op names a Store method as an instrumented store reports it. The values
// are stable: metric adapters use them as label values.
type Op string

// The operations an instrumented store reports.
const (
	OpAppend          Op = "append"
	OpReadStream      Op = "read_stream"
	OpReadAll         Op = "read_all"
	OpStreamVersion   Op = "stream_version"
	OpHead            Op = "head"
	OpWait            Op = "wait"
	OpSaveSnapshot    Op = "save_snapshot"
	OpLoadSnapshot    Op = "load_snapshot"
	OpSaveCheckpoint  Op = "save_checkpoint"
	OpLoadCheckpoint  Op = "load_checkpoint"
	OpSaveIdempotency Op = "save_idempotency"
	OpLoadIdempotency Op = "load_idempotency"
	OpStats           Op = "stats"
	OpFlush           Op = "flush"
	OpClose           Op = "close"
)

// Outcome classifies how a store call ended. The values are stable label
// values.
type Outcome string

// The outcomes of a store call.
const (
	// OutcomeOK: the call succeeded (a read that found nothing is OK).
	OutcomeOK Outcome = "ok"
	// OutcomeConflict: an append lost on its expected version (runtime.ErrConflict).
	OutcomeConflict Outcome = "conflict"
	// OutcomeDuplicate: an idempotency key was already recorded (runtime.ErrDuplicate).
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeNotFound: a snapshot, checkpoint or idempotency record is missing.
	OutcomeNotFound Outcome = "not_found"
	// OutcomeCanceled: the caller's context ended first.
	OutcomeCanceled Outcome = "canceled"
	// OutcomeInvalid: the input broke a rule (runtime.ErrInvalid or runtime.ErrTooLarge).
	OutcomeInvalid Outcome = "invalid"
	// OutcomeCorrupt: stored bytes did not decode (runtime.ErrCorrupt).
	OutcomeCorrupt Outcome = "corrupt"
	// OutcomeClosed: the store was closed (runtime.ErrClosed).
	OutcomeClosed Outcome = "closed"
	// OutcomeUnavailable: the store could not be reached (runtime.ErrUnavailable).
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeError: any other failure (I/O, network, a failed store).
	OutcomeError Outcome = "error"
)

// OutcomeOf classifies err as an instrumented store reports it.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, runtime.ErrConflict):
		return OutcomeConflict
	case errors.Is(err, runtime.ErrDuplicate):
		return OutcomeDuplicate
	case errors.Is(err, runtime.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, runtime.ErrTooLarge):
		return OutcomeInvalid
	case errors.Is(err, runtime.ErrCorrupt):
		return OutcomeCorrupt
	case errors.Is(err, runtime.ErrClosed):
		return OutcomeClosed
	case errors.Is(err, runtime.ErrUnavailable):
		return OutcomeUnavailable
	}
	return OutcomeError
}

// Call describes one completed call on an instrumented store.
type Call struct {
	// Op is the Store method.
	Op Op
	// StreamType is the stream type the call concerned, "" for calls on
	// the whole log or the store (ReadAll, Head, Wait, Stats, …).
	// Stream ids are never reported: they are unbounded label values.
	StreamType string
	// Duration is the time spent in the store. For ReadStream and ReadAll
	// it excludes the time the caller's loop body spent between records,
	// so a slow consumer does not look like a slow store.
	Duration time.Duration
	// Records is the number of events the call moved: appended by Append,
	// yielded by ReadStream and ReadAll. 0 for other calls.
	Records int
	// Outcome classifies Err.
	Outcome Outcome
	// Err is the error the call returned or yielded, nil on success.
	Err error
}

// Metrics receives a Call for every completed call on a store wrapped by
// New. Implementations must be safe for concurrent use and should
// return quickly: they run on the caller's goroutine. Package
// metrics/prometheus adapts it to Prometheus counters and histograms.
//
// What the calls measure, by concern:
//   - appends: OpAppend calls, their latency and Records (events appended);
//   - conflicts: OpAppend calls with OutcomeConflict;
//   - reads: OpReadStream and OpReadAll calls, their latency and Records;
//   - subscriptions: Subscribe and the projection runners catch up with
//     OpReadAll and follow the log live through OpWait, whose latency is
//     how long a subscriber waited for the next durable event.
type Metrics interface {
	ObserveCall(c Call)
}

// MetricsFunc adapts a function to Metrics.
type MetricsFunc func(Call)

// ObserveCall calls f(c).
func (f MetricsFunc) ObserveCall(c Call) { f(c) }

// Option configures New.
type Option func(*instrumentOptions)

type instrumentOptions struct {
	logger *slog.Logger
	slow   time.Duration
	now    func() time.Time
	tracer telemetry.Tracer
}

// WithLogger makes the instrumented store log through l what an
// operator wants to know (nothing by default):
//   - Error: corrupt records (runtime.ErrCorrupt) and failures other than conflicts,
//     duplicates, missing records, invalid input and cancellation;
//   - Warn: calls slower than the WithSlowCall threshold;
//   - Debug: conflicts and duplicate idempotency keys.
//
// Records carry op, stream_type (and stream for appends), outcome, the
// duration and the error.
func WithLogger(l *slog.Logger) Option {
	return func(o *instrumentOptions) { o.logger = l }
}

// WithSlowCall sets the duration above which a call is logged at Warn
// level (default 0: never). Waits are exempt: waiting is their job.
func WithSlowCall(d time.Duration) Option {
	return func(o *instrumentOptions) { o.slow = d }
}

// WithClock sets the clock that durations are measured with (default: a
// monotonic clock, see monotonicNow), for deterministic tests of metrics
// pipelines.
func WithClock(now func() time.Time) Option {
	return func(o *instrumentOptions) {
		if now != nil {
			o.now = now
		}
	}
}

// WithTracer makes repositories, projection runners and saga runners over
// the instrumented store start spans through t (see telemetry.Tracer). New's
// metrics may be nil for tracing alone.
func WithTracer(t telemetry.Tracer) Option {
	return func(o *instrumentOptions) { o.tracer = t }
}

// clockBase anchors monotonicNow.
var clockBase = time.Now()

// monotonicNow is the default clock: clockBase moved on by the monotonic
// time since, which reads one clock where time.Now reads two (wall and
// monotonic). Durations are all it is used for, and reads time each
// record's store work apart from its consumer's (two readings a record),
// so on a VM where a clock reading costs 20-60 ns this is most of an
// instrumented Load's overhead.
func monotonicNow() time.Time { return clockBase.Add(time.Since(clockBase)) }

// New wraps store so that every call is reported to m (which may be
// nil for logging only) and, with WithLogger, logged. The wrapper
// adds no behaviour: results and errors pass through unchanged. Use
// Unwrap on the result to reach the backend's own type.
func New(store runtime.Store, m Metrics, opts ...Option) *Store {
	o := instrumentOptions{now: monotonicNow}
	for _, f := range opts {
		f(&o)
	}
	return &Store{s: store, m: m, o: o}
}

// Store is a runtime.Store that reports every call to a Metrics and
// a slog.Logger. Create it with New.
type Store struct {
	s runtime.Store
	m Metrics
	o instrumentOptions
}

var (
	_ runtime.Store          = (*Store)(nil)
	_ runtime.StreamVisitor  = (*Store)(nil)
	_ telemetry.Instrumented = (*Store)(nil)
)

// Unwrap returns the wrapped store.
func (i *Store) Unwrap() runtime.Store { return i.s }

// Tracer returns the tracer given with WithTracer, or nil
// (telemetry.Instrumented).
func (i *Store) Tracer() telemetry.Tracer { return i.o.tracer }

// Observer returns the Metrics given to New, or nil
// (telemetry.Instrumented): repositories and runners over the store report
// to it what it implements of telemetry.CommandMetrics, projection.Metrics
// and saga.Metrics.
func (i *Store) Observer() any {
	if i.m == nil {
		return nil
	}
	return i.m
}

// observe reports one call that started at start.
func (i *Store) observe(op Op, stream *runtime.StreamID, start time.Time, records int, err error) {
	i.report(op, stream, i.o.now().Sub(start), records, err)
}

func (i *Store) report(op Op, stream *runtime.StreamID, d time.Duration, records int, err error) {
	c := Call{Op: op, Duration: d, Records: records, Outcome: OutcomeOf(err), Err: err}
	if stream != nil {
		c.StreamType = stream.Type
	}
	if i.m != nil {
		i.m.ObserveCall(c)
	}
	if i.o.logger != nil {
		i.log(c, stream)
	}
}

func (i *Store) log(c Call, stream *runtime.StreamID) {
	var level slog.Level
	switch c.Outcome {
	case OutcomeOK, OutcomeNotFound, OutcomeCanceled, OutcomeInvalid, OutcomeClosed:
		if i.o.slow <= 0 || c.Duration <= i.o.slow || c.Op == OpWait {
			return
		}
		level = slog.LevelWarn
	case OutcomeConflict, OutcomeDuplicate:
		level = slog.LevelDebug
	default:
		level = slog.LevelError
	}
	ctx := context.Background()
	if !i.o.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("op", string(c.Op))}
	if stream != nil {
		attrs = append(attrs, slog.String("stream", stream.String()))
	}
	attrs = append(attrs, slog.String("outcome", string(c.Outcome)), slog.Duration("duration", c.Duration))
	if c.Records > 0 {
		attrs = append(attrs, slog.Int("records", c.Records))
	}
	// A slow call is logged for its duration, whatever its outcome: a
	// snapshot miss (not_found) is a normal answer, not a failure.
	msg := "cqrsgen store call slow"
	if level != slog.LevelWarn {
		attrs = append(attrs, slog.String("error", c.Err.Error()))
		msg = "cqrsgen store call failed"
	}
	i.o.logger.LogAttrs(ctx, level, msg, attrs...)
}

// Append appends through the wrapped store and reports OpAppend.
func (i *Store) Append(ctx context.Context, req runtime.AppendRequest) (runtime.AppendResult, error) {
	start := i.o.now()
	res, err := i.s.Append(ctx, req)
	n := 0
	if err == nil {
		n = len(req.Events)
	}
	i.observe(OpAppend, &req.Stream, start, n, err)
	return res, err
}

// measure wraps a read sequence: it reports op once the loop ends, with
// the records yielded and the time spent inside the store.
func (i *Store) measure(op Op, stream *runtime.StreamID, seq iter.Seq2[runtime.Record, error]) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		var (
			spent time.Duration
			n     int
			last  error
		)
		mark := i.o.now()
		for rec, err := range seq {
			spent += i.o.now().Sub(mark)
			if err != nil {
				last = err
			} else {
				n++
			}
			ok := yield(rec, err)
			mark = i.o.now()
			if !ok {
				i.report(op, stream, spent, n, last)
				return
			}
		}
		spent += i.o.now().Sub(mark)
		i.report(op, stream, spent, n, last)
	}
}

// ReadStream reads through the wrapped store and reports OpReadStream when
// the loop ends.
func (i *Store) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return i.measure(OpReadStream, &stream, i.s.ReadStream(ctx, stream, after))
}

// VisitStream visits through the wrapped store (see runtime.StreamVisitor
// and storekit.VisitStream: its own VisitStream, else its ReadStream with
// each Record shown as a stable view) and reports OpReadStream exactly as
// ReadStream does: the views shown as Records, the time spent in the store
// without fn's, and the store's error. An error of fn ends the visit as a
// break ends a ReadStream loop: it is returned, not reported, and the time
// after it is not counted. Repository.Load reads through it, so an
// instrumented store keeps the wrapped store's fast path.
func (i *Store) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	var (
		spent   time.Duration
		n       int
		stopped bool
	)
	mark := i.o.now()
	err := storekit.VisitStream(ctx, i.s, stream, after, func(e *runtime.EventView) error {
		spent += i.o.now().Sub(mark)
		n++
		ferr := fn(e)
		if ferr != nil {
			stopped = true
			return ferr
		}
		mark = i.o.now()
		return nil
	})
	if stopped {
		i.report(OpReadStream, &stream, spent, n, nil)
		return err
	}
	spent += i.o.now().Sub(mark)
	i.report(OpReadStream, &stream, spent, n, err)
	return err
}

// ReadAll reads through the wrapped store and reports OpReadAll when the
// loop ends.
func (i *Store) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	return i.measure(OpReadAll, nil, i.s.ReadAll(ctx, after))
}

// StreamVersion reports OpStreamVersion.
func (i *Store) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	start := i.o.now()
	v, err := i.s.StreamVersion(ctx, stream)
	i.observe(OpStreamVersion, &stream, start, 0, err)
	return v, err
}

// Head reports OpHead.
func (i *Store) Head(ctx context.Context) (uint64, error) {
	start := i.o.now()
	h, err := i.s.Head(ctx)
	i.observe(OpHead, nil, start, 0, err)
	return h, err
}

// Wait reports OpWait: how long a subscriber waited for the next event.
func (i *Store) Wait(ctx context.Context, after uint64) (uint64, error) {
	start := i.o.now()
	h, err := i.s.Wait(ctx, after)
	i.observe(OpWait, nil, start, 0, err)
	return h, err
}

// SaveSnapshot reports OpSaveSnapshot.
func (i *Store) SaveSnapshot(ctx context.Context, s runtime.Snapshot) error {
	start := i.o.now()
	err := i.s.SaveSnapshot(ctx, s)
	i.observe(OpSaveSnapshot, &s.Stream, start, 0, err)
	return err
}

// LoadSnapshot reports OpLoadSnapshot.
func (i *Store) LoadSnapshot(ctx context.Context, stream runtime.StreamID) (runtime.Snapshot, error) {
	start := i.o.now()
	s, err := i.s.LoadSnapshot(ctx, stream)
	i.observe(OpLoadSnapshot, &stream, start, 0, err)
	return s, err
}

// SaveCheckpoint reports OpSaveCheckpoint.
func (i *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	start := i.o.now()
	err := i.s.SaveCheckpoint(ctx, name, position)
	i.observe(OpSaveCheckpoint, nil, start, 0, err)
	return err
}

// LoadCheckpoint reports OpLoadCheckpoint.
func (i *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	start := i.o.now()
	p, err := i.s.LoadCheckpoint(ctx, name)
	i.observe(OpLoadCheckpoint, nil, start, 0, err)
	return p, err
}

// SaveIdempotency reports OpSaveIdempotency.
func (i *Store) SaveIdempotency(ctx context.Context, rec runtime.IdempotencyRecord) error {
	start := i.o.now()
	err := i.s.SaveIdempotency(ctx, rec)
	i.observe(OpSaveIdempotency, &rec.Stream, start, 0, err)
	return err
}

// LoadIdempotency reports OpLoadIdempotency.
func (i *Store) LoadIdempotency(ctx context.Context, key string) (runtime.IdempotencyRecord, error) {
	start := i.o.now()
	rec, err := i.s.LoadIdempotency(ctx, key)
	i.observe(OpLoadIdempotency, nil, start, 0, err)
	return rec, err
}

// Stats reports OpStats.
func (i *Store) Stats(ctx context.Context) (runtime.Stats, error) {
	start := i.o.now()
	st, err := i.s.Stats(ctx)
	i.observe(OpStats, nil, start, 0, err)
	return st, err
}

// Flush reports OpFlush.
func (i *Store) Flush(ctx context.Context) error {
	start := i.o.now()
	err := i.s.Flush(ctx)
	i.observe(OpFlush, nil, start, 0, err)
	return err
}

// Close closes the wrapped store and reports OpClose.
func (i *Store) Close() error {
	start := i.o.now()
	err := i.s.Close()
	i.observe(OpClose, nil, start, 0, err)
	return err
}
