// Package telemetry defines the hooks through which the runtime reports its
// own work: spans (Tracer) for repositories and the projection and saga
// runners, and command outcomes (CommandMetrics). Adapters implement them
// (trace/otelcqrs, metrics/prometheus); runtime/instrument installs them on
// a store, and the runtime finds them behind any chain of store wrappers
// (Instrumented).
package telemetry

import (
	"context"
	"time"
)

// SpanKind names the work a span covers. The values are stable: tracer
// adapters use them in span names.
type SpanKind string

// The kinds of span the runtime starts.
const (
	// SpanExecute covers runtime.Repository.Execute: load, decide, append, retries.
	SpanExecute SpanKind = "execute"
	// SpanLoad covers runtime.Repository.Load: snapshot and events.
	SpanLoad SpanKind = "load"
	// SpanAppend covers one append of a repository; the events it writes
	// carry its trace context (Tracer.Inject).
	SpanAppend SpanKind = "append"
	// SpanProjection covers one call of a projection's (or a saga's)
	// handler for one record.
	SpanProjection SpanKind = "projection"
	// SpanSagaStep covers one saga step or compensation: the command's
	// execution with its retries.
	SpanSagaStep SpanKind = "saga_step"
)

// SpanStart describes a span about to start. Fields that do not apply to
// a kind are zero.
type SpanStart struct {
	Kind SpanKind
	// Stream is the aggregate (execute, load, append, saga step: the
	// step's target id, Type empty since the saga routes by command) or
	// the handled record's stream (projection).
	Stream Stream
	// Name is the projection's or the saga's name.
	Name string
	// Command is the command's Go type (execute, saga step).
	Command string
	// Event, Version and Position describe the handled record
	// (projection), or the event that caused the step (saga step).
	Event             string
	Version, Position uint64
	// Instance and Step name a saga step ("3", or "3c" for the
	// compensation of step 3).
	Instance, Step string
	// Cause is the metadata of the event that caused this work
	// (projection, saga step): it holds the trace context the writer's
	// Tracer.Inject stored, so the span can continue or link to that trace.
	Cause map[string]string
}

// Stream names a stream as runtime.StreamID does (convert one into the
// other): its type and id.
type Stream struct {
	Type string
	ID   string
}

// Span is a started span. End is called once, with the work's error.
type Span interface {
	End(err error)
}

// Tracer receives spans for the runtime's work. trace/otelcqrs adapts
// OpenTelemetry; the runtime itself links no tracing library. Give it to
// the runtime with instrument.WithTracer: repositories, projection runners and saga
// runners over the instrumented store use it. Without one the runtime
// starts no spans and writes no trace context, at the cost of a nil check.
type Tracer interface {
	// Start starts a span as s describes, below the span in ctx (or, for
	// work caused by an event, the span that wrote it: see
	// SpanStart.Cause), and returns a context carrying it.
	Start(ctx context.Context, s SpanStart) (context.Context, Span)
	// Inject stores the trace context of ctx in md, the metadata of events
	// being appended (W3C trace context: "traceparent", "tracestate").
	Inject(ctx context.Context, md map[string]string)
}

// Instrumented is implemented by store wrappers that carry
// instrumentation (instrument.Store). Repositories, and the projection and
// saga runners, find the first one behind any chain of wrappers with an
// Unwrap() runtime.Store method and report their work to it.
type Instrumented interface {
	// Tracer returns the tracer spans go to, nil for none.
	Tracer() Tracer
	// Observer returns what receives metrics (instrument.Metrics), nil for
	// none. Repositories report commands to it when it implements
	// CommandMetrics; the projection and saga runners use
	// projection.Metrics and saga.Metrics the same way.
	Observer() any
}

// CommandOutcome says how a runtime.Repository.Execute ended. The values are
// stable label values.
type CommandOutcome string

// The outcomes of a command.
const (
	// CommandOK: the command was decided and its events (if any) appended.
	CommandOK CommandOutcome = "ok"
	// CommandRejected: the aggregate's Handle method returned an error.
	CommandRejected CommandOutcome = "rejected"
	// CommandConflict: the append still conflicted after every retry.
	CommandConflict CommandOutcome = "conflict"
	// CommandDuplicate: the idempotency key had already succeeded; the
	// first result was returned.
	CommandDuplicate CommandOutcome = "duplicate"
	// CommandError: anything else (a store failure, invalid input,
	// cancellation).
	CommandError CommandOutcome = "error"
)

// CommandCall reports one completed runtime.Repository.Execute.
type CommandCall struct {
	// StreamType is the aggregate's stream type (never the id).
	StreamType string
	Outcome    CommandOutcome
	// Retries counts the appends retried after a version conflict.
	Retries  int
	Duration time.Duration
	Err      error
}

// CommandMetrics is an optional extension of instrument.Metrics for the
// write side: when the metrics given to instrument.New implement it,
// repositories over that instrumented store report each command to it.
// metrics/prometheus implements it.
type CommandMetrics interface {
	ObserveCommand(c CommandCall)
}
