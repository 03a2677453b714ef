package otelcqrs_test

import (
	"context"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
	"github.com/cqrsgen/cqrsgen/trace/otelcqrs"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkExecute measures what tracing adds to an Execute (the runtime
// benchmark BenchmarkRepositoryExecute's workload): "off" is the store
// instrumented with neither metrics nor tracer, "sampled" records every
// span through the SDK (no exporter: the cost of spans and trace context,
// not of shipping them), "unsampled" a tracer whose sampler drops all, and
// "correlation" no tracer but a correlation id in the context: the cost of
// events that carry metadata, which Load then reads back.
func BenchmarkExecute(b *testing.B) {
	for _, c := range []struct {
		name   string
		tracer telemetry.Tracer
		corr   bool
	}{
		{"off", nil, false},
		{"correlation", nil, true},
		{"sampled", otelcqrs.New(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))), false},
		{"unsampled", otelcqrs.New(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if c.corr {
				ctx = runtime.ContextWithCorrelation(ctx, "req-42")
			}
			var store runtime.Store = memory.New()
			defer store.Close()
			if c.tracer != nil {
				store = instrument.New(store, nil, instrument.WithTracer(c.tracer))
			}
			repo := account.NewAccountRepository(store)
			if _, err := repo.Execute(ctx, "bench", account.OpenAccount{Owner: "bench owner"}); err != nil {
				b.Fatal(err)
			}
			cmd := account.Deposit{Amount: 12_345, Reference: "bench-ref-000042"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := repo.Execute(ctx, "bench", cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
