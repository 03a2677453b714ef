package saga

import (
	"context"
	"slices"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/route"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
)

// recordKey routes a record by its stream type and wire name.
type recordKey struct{ streamType, name string }

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
	names     []string
	correlate route.Table[recordKey, sagaCorrelate[S]]
	err       error
}

// NewReactions combines the reactions of a saga, one per event type.
func NewReactions[S any](rs ...Reaction[S]) *Reactions[S] {
	out := &Reactions[S]{}
	for _, r := range rs {
		if r.err != nil && out.err == nil {
			out.err = r.err
		}
		for _, name := range r.names {
			if !slices.Contains(out.names, name) {
				out.names = append(out.names, name)
			}
			out.correlate.Add(recordKey{r.stream, name}, r.correlate)
		}
	}
	return out
}

// Names returns the wire names the reactions consume (for Saga.Events).
func (r *Reactions[S]) Names() []string { return r.names }

// Correlate decodes rec and returns the instance it belongs to and the
// reaction to run (for Saga.Correlate); a record no reaction takes is
// skipped without decoding (ok is false).
func (r *Reactions[S]) Correlate(rec runtime.Record) (instance string, react func(context.Context, *S, *Actions) error, ok bool, err error) {
	if r.err != nil {
		return "", nil, false, r.err
	}
	if fn, found := r.correlate.Get(recordKey{rec.Stream.Type, rec.Name}); found {
		return fn(rec)
	}
	return "", nil, false, nil
}
