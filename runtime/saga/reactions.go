package saga

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/route"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
)

// sagaCorrelate is the correlate step of one saga reaction.
type sagaCorrelate[S any] func(rec runtime.Record) (string, func(context.Context, *S, *Actions) error, bool, error)

// Reaction is a saga's reaction to one event type, built by React.
type Reaction[S any] struct {
	names     []string
	correlate sagaCorrelate[S]
	stream    string
	err       error
}

// React returns saga S's reaction to event type E of the aggregate whose
// table is t: correlate maps the event to an instance (it is called on a
// zero S), and on reacts to it. Generated code passes method expressions
// ((*Transfer).CorrelateWithdrawn, (*Transfer).OnWithdrawn).
func React[S, E, A, I any](t *registry.Events[A, I], correlate func(*S, runtime.Envelope[E]) (string, bool), on func(*S, context.Context, runtime.Envelope[E], *Actions) error) Reaction[S] {
	names, decode, err := registry.Typed[E](t)
	return Reaction[S]{names: names, stream: t.StreamType(), err: err,
		correlate: func(rec runtime.Record) (string, func(context.Context, *S, *Actions) error, bool, error) {
			e, err := decode(rec)
			if err != nil {
				return "", nil, false, err
			}
			env := runtime.EnvelopeOf(rec, e)
			instance, ok := correlate(new(S), env)
			return instance, func(ctx context.Context, s *S, do *Actions) error { return on(s, ctx, env, do) }, ok, nil
		}}
}

// Reactions routes records to the reactions of one saga by stream type and
// wire name, decoding each once into the type its reaction takes.
type Reactions[S any] struct {
	routes route.Records[sagaCorrelate[S]]
}

// NewReactions combines the reactions of a saga, one per event type.
func NewReactions[S any](rs ...Reaction[S]) *Reactions[S] {
	out := &Reactions[S]{}
	for _, r := range rs {
		out.routes.Add(r.stream, r.names, r.correlate, r.err)
	}
	return out
}

// Names returns the wire names the reactions consume (for Saga.Events).
func (r *Reactions[S]) Names() []string { return r.routes.Names() }

// Correlate decodes rec and returns the instance it belongs to and the
// reaction to run (for Saga.Correlate); a record no reaction takes is
// skipped without decoding (ok is false).
func (r *Reactions[S]) Correlate(rec runtime.Record) (instance string, react func(context.Context, *S, *Actions) error, ok bool, err error) {
	if err := r.routes.Err(); err != nil {
		return "", nil, false, err
	}
	if fn, found := r.routes.Get(rec.Stream.Type, rec.Name); found {
		return fn(rec)
	}
	return "", nil, false, nil
}
