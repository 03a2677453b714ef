package registry

import (
	"strings"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// Decoder returns the decoder of event type E of the aggregate whose table
// is t: it decodes any stored form of E (its current wire name and schema
// version, and the former ones upcast into it) straight into an E, without
// boxing it in the event interface as Events.Decode must. A form that is
// not E's is a *runtime.UnknownEventError. When E is not one of t's event types,
// Decoder returns an error matching runtime.ErrInvalid.
func Decoder[E, S, I any](t *Events[S, I]) (func(name string, schema uint32, data []byte) (E, error), error) {
	fs, err := typedForms[E](t)
	if err != nil {
		return nil, err
	}
	return func(name string, schema uint32, data []byte) (E, error) {
		for i := range fs {
			if fs[i].schema == schema && fs[i].name == name {
				return fs[i].decode(data)
			}
		}
		var zero E
		return zero, &runtime.UnknownEventError{Name: strings.Clone(name), Schema: schema}
	}, nil
}
