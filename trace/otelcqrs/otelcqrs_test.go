package otelcqrs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	"github.com/cqrsgen/cqrsgen/trace/otelcqrs"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The fixture: placing an order appends "placed"; a saga reacts by sending
// "reserve" to the stock aggregate of the same id, which appends
// "reserved". Both aggregates are written by hand in the shape cqrsgen
// generates, with the event name as the whole event.

type event struct{ Name string }

func aggregate(typ string, decide func(string) string) *runtime.Aggregate[struct{}, event, string] {
	return &runtime.Aggregate[struct{}, event, string]{
		Type:  typ,
		Apply: func(*struct{}, event) {},
		Decide: func(_ *struct{}, c string) ([]event, error) {
			if e := decide(c); e != "" {
				return []event{{Name: e}}, nil
			}
			return nil, fmt.Errorf("%s: unknown command %q", typ, c)
		},
		EncodeEvent: func(e event) (runtime.EventData, error) { return runtime.EventData{Name: e.Name, Schema: 1}, nil },
		DecodeEvent: func(name string, _ uint32, _ []byte) (event, error) { return event{Name: name}, nil },
	}
}

func fulfilment(stock *runtime.Repository[struct{}, event, string]) *saga.Saga[bool] {
	return &saga.Saga[bool]{
		Name:   "fulfilment",
		Events: []string{"placed", "reserved"},
		Correlate: func(rec runtime.Record) (string, func(context.Context, *bool, *saga.Actions) error, bool, error) {
			if rec.Name == "placed" {
				return rec.Stream.ID, func(_ context.Context, _ *bool, do *saga.Actions) error {
					do.Send(do.Instance(), "reserve")
					return nil
				}, true, nil
			}
			id, ok := saga.SentBy(rec.Metadata, "fulfilment")
			return id, func(_ context.Context, done *bool, do *saga.Actions) error {
				*done = true
				do.Complete()
				return nil
			}, ok, nil
		},
		Execute: func(ctx context.Context, id string, c any, opts ...runtime.ExecOption) (uint64, error) {
			return stock.Execute(ctx, id, c.(string), opts...)
		},
		EncodeState: func(done *bool) ([]byte, error) { return []byte{map[bool]byte{false: 0, true: 1}[*done]}, nil },
		DecodeState: func(b []byte, done *bool) error {
			if len(b) != 1 {
				return errors.New("bad state")
			}
			*done = b[0] == 1
			return nil
		},
	}
}

// TestTraceCrossesSaga: command → event → saga → command → event is one
// trace: the saga's handling span is a child of the append span that wrote
// "placed", the step's span a child of it, the stock command's spans below
// the step, and the "reserved" event carries its append span's context.
func TestTraceCrossesSaga(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	store := instrument.New(memory.New(), nil, instrument.WithTracer(otelcqrs.New(tp)))
	defer store.Close()
	orders := runtime.NewRepository(store, aggregate("order", func(c string) string { return map[string]string{"place": "placed"}[c] }))
	stock := runtime.NewRepository(store, aggregate("stock", func(c string) string { return map[string]string{"reserve": "reserved"}[c] }))
	sg := fulfilment(stock)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- saga.Run(ctx, store, sg) }()

	reqCtx, request := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := orders.Execute(reqCtx, "o1", "place"); err != nil {
		t.Fatal(err)
	}
	request.End()
	// WaitFor wakes on the saga stream's appends instead of polling Load.
	waitCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if _, err := saga.WaitFor(waitCtx, store, sg, "o1", nil); err != nil {
		t.Fatalf("the saga never completed: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()
	find := func(name string, attr ...string) sdktrace.ReadOnlySpan {
		t.Helper()
	next:
		for _, s := range spans {
			if s.Name() != name {
				continue
			}
			for i := 0; i < len(attr); i += 2 {
				found := false
				for _, kv := range s.Attributes() {
					if string(kv.Key) == attr[i] && kv.Value.Emit() == attr[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return s
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("no span %s %v among %s", name, attr, strings.Join(names, ", "))
		return nil
	}
	root := find("request")
	execOrder := find("cqrs.execute order")
	appendOrder := find("cqrs.append order")
	handle := find("cqrs.projection cqrsgen.saga.fulfilment", "cqrs.event", "placed")
	step := find("cqrs.saga_step fulfilment", "cqrs.saga.step", "1")
	execStock := find("cqrs.execute stock")
	appendStock := find("cqrs.append stock")
	loadStock := find("cqrs.load stock")

	for _, c := range []struct {
		what          string
		child, parent sdktrace.ReadOnlySpan
	}{
		{"order execute under the request", execOrder, root},
		{"order append under its execute", appendOrder, execOrder},
		{"saga handling under the append that wrote placed", handle, appendOrder},
		{"saga step under the handling", step, handle},
		{"stock execute under the step", execStock, step},
		{"stock load under its execute", loadStock, execStock},
		{"stock append under its execute", appendStock, execStock},
	} {
		if c.child.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("%s: trace %s, want the request's %s", c.what, c.child.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
		if c.child.Parent().SpanID() != c.parent.SpanContext().SpanID() {
			t.Errorf("%s: parent %s, want %s (%s)", c.what, c.child.Parent().SpanID(), c.parent.SpanContext().SpanID(), c.parent.Name())
		}
	}
	if handle.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("handling span kind %v", handle.SpanKind())
	}

	// The stored events carry their append span's context, and the
	// reserved event the causation and correlation of placed.
	var placed, reserved runtime.Record
	for r, err := range store.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch r.Name {
		case "placed":
			placed = r
		case "reserved":
			reserved = r
		}
	}
	for _, c := range []struct {
		rec  runtime.Record
		span sdktrace.ReadOnlySpan
	}{{placed, appendOrder}, {reserved, appendStock}} {
		sc := c.span.SpanContext()
		want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
		if got := c.rec.Metadata["traceparent"]; got != want {
			t.Errorf("%s: traceparent %q, want %q", c.rec.Name, got, want)
		}
	}
	if reserved.Metadata[runtime.MetadataCausation] != runtime.RefOf(placed) ||
		reserved.Metadata[runtime.MetadataCorrelation] != runtime.RefOf(placed) {
		t.Errorf("reserved metadata %v, want causation and correlation %d", reserved.Metadata, placed.Position)
	}
}

// TestWithLinks: with WithLinks, the saga's handling span starts a trace
// of its own and links to the append span that wrote the event.
func TestWithLinks(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	store := instrument.New(memory.New(), nil, instrument.WithTracer(otelcqrs.New(tp, otelcqrs.WithLinks())))
	defer store.Close()
	orders := runtime.NewRepository(store, aggregate("order", func(string) string { return "placed" }))
	if _, err := orders.Execute(context.Background(), "o1", "place"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := make(chan struct{})
	go projection.Run(ctx, store, projection.Projection{Name: "p", Handle: func(context.Context, runtime.Record) error {
		close(handled)
		return nil
	}})
	<-handled
	cancel()
	var appendSpan, handle sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); handle == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "cqrs.append order":
				appendSpan = s
			case "cqrs.projection p":
				handle = s
			}
		}
	}
	if appendSpan == nil || handle == nil {
		t.Fatal("spans missing")
	}
	if handle.SpanContext().TraceID() == appendSpan.SpanContext().TraceID() || handle.Parent().IsValid() {
		t.Errorf("handling span continues the writer's trace (parent %v)", handle.Parent())
	}
	if l := handle.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != appendSpan.SpanContext().SpanID() {
		t.Errorf("handling span links %v, want the append span %s", l, appendSpan.SpanContext().SpanID())
	}
}
