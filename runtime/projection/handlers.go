package projection

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/route"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
)

// Handler is a projection's handler of one event type, built by On.
type Handler struct {
	names  []string
	handle func(ctx context.Context, rec runtime.Record) error
	stream string
	err    error
}

// On returns the handler that decodes the records of event type E of the
// aggregate whose table is t (current and former wire names, upcast) and
// calls fn with the concrete event. Generated Projection methods pass their
// On<Event> methods.
func On[E, S, I any](t *registry.Events[S, I], fn func(context.Context, runtime.Envelope[E]) error) Handler {
	names, decode, err := registry.Typed[E](t)
	return Handler{names: names, stream: t.StreamType(), err: err, handle: func(ctx context.Context, rec runtime.Record) error {
		e, err := decode(rec)
		if err != nil {
			return err
		}
		return fn(ctx, runtime.EnvelopeOf(rec, e))
	}}
}

// Handlers routes records to the handlers of one projection by stream type
// and wire name: each record is decoded once, straight into the type its
// handler takes.
type Handlers struct {
	routes route.Records[func(ctx context.Context, rec runtime.Record) error]
}

// NewHandlers combines the handlers of a projection, one per event type.
func NewHandlers(hs ...Handler) *Handlers {
	out := &Handlers{}
	for _, h := range hs {
		out.routes.Add(h.stream, h.names, h.handle, h.err)
	}
	return out
}

// Names returns the wire names the handlers consume (for Projection.Events),
// current names before former ones of each event type, in handler order.
func (h *Handlers) Names() []string { return h.routes.Names() }

// Handle decodes rec and calls the handler of its stream type and wire
// name; a record no handler takes is skipped without decoding.
func (h *Handlers) Handle(ctx context.Context, rec runtime.Record) error {
	if err := h.routes.Err(); err != nil {
		return err
	}
	if fn, ok := h.routes.Get(rec.Stream.Type, rec.Name); ok {
		return fn(ctx, rec)
	}
	return nil
}
