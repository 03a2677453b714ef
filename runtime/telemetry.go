package runtime

import (
	"context"
	"maps"

	"github.com/cqrsgen/cqrsgen/runtime/internal/wrap"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// instrumented finds, behind store's wrappers, an Instrumented store for
// which pick reports a value.
func instrumented[T any](store Store, pick func(telemetry.Instrumented) (T, bool)) T {
	return wrap.Find(store, func(s Store) (T, bool) {
		if i, ok := s.(telemetry.Instrumented); ok {
			return pick(i)
		}
		var zero T
		return zero, false
	})
}

// tracerOf finds the Tracer behind store's wrappers, or nil.
func tracerOf(store Store) telemetry.Tracer {
	return instrumented(store, func(i telemetry.Instrumented) (telemetry.Tracer, bool) { t := i.Tracer(); return t, t != nil })
}

// traceMetadata returns md with ctx's trace context added, leaving md
// (which may be shared with a context) untouched.
func traceMetadata(ctx context.Context, t telemetry.Tracer, md map[string]string) map[string]string {
	out := make(map[string]string, len(md)+2)
	maps.Copy(out, md)
	t.Inject(ctx, out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// commandMetricsOf finds telemetry.CommandMetrics behind store's wrappers, or nil.
func commandMetricsOf(store Store) telemetry.CommandMetrics {
	return instrumented(store, func(i telemetry.Instrumented) (telemetry.CommandMetrics, bool) {
		m, ok := i.Observer().(telemetry.CommandMetrics)
		return m, ok
	})
}
