// Package otelcqrs adapts OpenTelemetry tracing (go.opentelemetry.io/otel)
// to telemetry.Tracer, so that the runtime itself links no tracing library.
//
//	tracer := otelcqrs.New(otel.GetTracerProvider())
//	store := instrument.New(pebbleStore, metrics, instrument.WithTracer(tracer))
//
// Repositories, projection runners and saga runners over store then start
// a span for every Execute, Load and Append, every call of a projection
// handler and every saga step. Appended events carry the W3C trace context
// of their append span in their metadata ("traceparent", "tracestate"), and
// the span of a projection handler or a saga step that handles such an
// event continues that trace as a child of the span that wrote it (or,
// with WithLinks, starts a trace of its own linked to it). So a request's
// trace runs through its events into the projections and sagas they feed,
// and through the commands those send.
package otelcqrs

import (
	"context"
	"strconv"

	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/cqrsgen/cqrsgen/trace/otelcqrs"

// Span attribute keys.
const (
	AttrStreamType    = attribute.Key("cqrs.stream.type")
	AttrStreamID      = attribute.Key("cqrs.stream.id")
	AttrCommand       = attribute.Key("cqrs.command")
	AttrProjection    = attribute.Key("cqrs.projection")
	AttrSaga          = attribute.Key("cqrs.saga")
	AttrSagaInstance  = attribute.Key("cqrs.saga.instance")
	AttrSagaStep      = attribute.Key("cqrs.saga.step")
	AttrEvent         = attribute.Key("cqrs.event")
	AttrEventVersion  = attribute.Key("cqrs.event.version")
	AttrEventPosition = attribute.Key("cqrs.event.position")
)

// Tracer is a telemetry.Tracer over an OpenTelemetry TracerProvider.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	links  bool
}

var _ telemetry.Tracer = (*Tracer)(nil)

// Option configures New.
type Option func(*Tracer)

// WithPropagator sets how trace context is written to and read from event
// metadata (default: propagation.TraceContext, the W3C "traceparent" and
// "tracestate" keys).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracer) {
		if p != nil {
			t.prop = p
		}
	}
}

// WithLinks makes the span of work caused by an event (a projection
// handler, a saga step) a child of the span in its context, usually none so
// a new trace, with a link to the span that wrote the event, instead of a
// child of that span. Use it when one event feeds many long-lived readers
// and one trace per request would grow without bound.
func WithLinks() Option {
	return func(t *Tracer) { t.links = true }
}

// New returns a Tracer whose spans come from tp.
func New(tp trace.TracerProvider, opts ...Option) *Tracer {
	t := &Tracer{tracer: tp.Tracer(ScopeName), prop: propagation.TraceContext{}}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Start starts the span s describes. Its name is "cqrs.<kind> <stream type
// or projection/saga name>".
func (t *Tracer) Start(ctx context.Context, s telemetry.SpanStart) (context.Context, telemetry.Span) {
	attrs := make([]attribute.KeyValue, 0, 8)
	add := func(k attribute.Key, v string) {
		if v != "" {
			attrs = append(attrs, k.String(v))
		}
	}
	add(AttrStreamType, s.Stream.Type)
	add(AttrStreamID, s.Stream.ID)
	add(AttrCommand, s.Command)
	add(AttrEvent, s.Event)
	add(AttrSagaInstance, s.Instance)
	add(AttrSagaStep, s.Step)
	if s.Version > 0 {
		attrs = append(attrs, AttrEventVersion.Int64(int64(s.Version)))
	}
	if s.Position > 0 {
		attrs = append(attrs, AttrEventPosition.String(strconv.FormatUint(s.Position, 10)))
	}
	name := "cqrs." + string(s.Kind)
	kind := trace.SpanKindInternal
	switch s.Kind {
	case telemetry.SpanProjection:
		add(AttrProjection, s.Name)
		name += " " + s.Name
		kind = trace.SpanKindConsumer
	case telemetry.SpanSagaStep:
		add(AttrSaga, s.Name)
		name += " " + s.Name
	default:
		name += " " + s.Stream.Type
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(attrs...)}
	if len(s.Cause) > 0 {
		writer := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier(s.Cause)))
		if writer.IsValid() {
			cur := trace.SpanContextFromContext(ctx)
			switch {
			case t.links:
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: writer}))
			case !cur.IsValid() || cur.TraceID() != writer.TraceID():
				// Continue the writer's trace, unless ctx already runs in
				// it (a saga step inside the handling of the event).
				ctx = trace.ContextWithRemoteSpanContext(ctx, writer)
			}
		}
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	return ctx, endSpan{span}
}

// Inject writes ctx's trace context into md.
func (t *Tracer) Inject(ctx context.Context, md map[string]string) {
	t.prop.Inject(ctx, propagation.MapCarrier(md))
}

type endSpan struct{ span trace.Span }

func (e endSpan) End(err error) {
	if err != nil {
		e.span.RecordError(err)
		e.span.SetStatus(codes.Error, err.Error())
	}
	e.span.End()
}
