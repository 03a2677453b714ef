package telemetry_test

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// recorder is a Tracer that records span names, indented by depth; an
// adapter such as trace/otelcqrs starts real spans instead.
type recorder struct {
	mu    sync.Mutex
	spans []string
}

type depthKey struct{}

func (r *recorder) Start(ctx context.Context, s telemetry.SpanStart) (context.Context, telemetry.Span) {
	depth, _ := ctx.Value(depthKey{}).(int)
	r.mu.Lock()
	defer r.mu.Unlock()
	name := fmt.Sprintf("%s%s %s/%s %s", strings.Repeat("  ", depth), s.Kind, s.Stream.Type, s.Stream.ID, s.Command)
	r.spans = append(r.spans, strings.TrimRight(name, " "))
	return context.WithValue(ctx, depthKey{}, depth+1), span{}
}

// Inject stores the trace context in the metadata of appended events; a
// real tracer writes W3C "traceparent" and "tracestate".
func (r *recorder) Inject(ctx context.Context, md map[string]string) {
	md["traceparent"] = "00-example"
}

type span struct{}

func (span) End(error) {}

type counter struct{ N int }

type incremented struct{}

type increment struct{}

var counterAggregate = &runtime.Aggregate[counter, incremented, increment]{
	Type:   "Counter",
	Apply:  func(c *counter, _ incremented) { c.N++ },
	Decide: func(*counter, increment) ([]incremented, error) { return []incremented{{}}, nil },
	EncodeEvent: func(incremented) (runtime.EventData, error) {
		return runtime.EventData{Name: "Incremented", Schema: 1, Data: []byte{}}, nil
	},
	DecodeEvent: func(string, uint32, []byte) (incremented, error) { return incremented{}, nil },
}

// A Tracer is given to the runtime with instrument.WithTracer; repositories
// (and projection and saga runners) over the instrumented store find it
// through the wrapper and start spans for their work.
func ExampleTracer() {
	ctx := context.Background()
	tracer := &recorder{}
	store := instrument.New(memory.New(), nil, instrument.WithTracer(tracer))
	counters := runtime.NewRepository(store, counterAggregate)

	if _, err := counters.Execute(ctx, "c-1", increment{}); err != nil {
		fmt.Println(err)
	}
	for _, s := range tracer.spans {
		fmt.Println(s)
	}
	for env := range counters.Events(ctx, "c-1", 0) {
		fmt.Println(env.Name, "traceparent:", env.Metadata["traceparent"])
	}
	// The wrapper is what the runtime looks for (telemetry.Instrumented).
	var found telemetry.Instrumented = store
	fmt.Println("instrumented:", found.Tracer() == tracer)
	// Output:
	// execute Counter/c-1 telemetry_test.increment
	//   load Counter/c-1
	//   append Counter/c-1
	// Incremented traceparent: 00-example
	// instrumented: true
}
