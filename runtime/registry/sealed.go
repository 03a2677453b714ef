package registry

import (
	"fmt"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// SealedEvent is Event for an event type with fields tagged pii: marshal
// seals them through the *runtime.Sealer the Repository passes (see Sealer). Such
// an event can only be encoded by a runtime.Repository over a store with a
// runtime.KeyStore: Events.Encode of it fails with runtime.ErrNoKeyStore, so that its
// personal data never reaches a store in plaintext.
func SealedEvent[I, S, E any](name string, schema uint32, apply func(*S, E), marshal func(E, *runtime.Sealer) ([]byte, error), unmarshal func([]byte) (E, error), upcasts ...Upcast[E]) *EventType[S, I] {
	t := Event[I](name, schema, apply, func(E) ([]byte, error) {
		return nil, fmt.Errorf("event %s has fields tagged pii, which only a Repository over a store with a KeyStore can seal: %w", name, runtime.ErrNoKeyStore)
	}, unmarshal, upcasts...)
	t.seal = func(i I, s *runtime.Sealer) ([]byte, error) {
		e, err := eventValue[E](i)
		if err != nil {
			return nil, err
		}
		return marshal(e, s)
	}
	return t
}

// Sealing reports whether any event type of t has fields tagged pii: then
// the Repository seals its events and its snapshots.
func (t *Events[S, I]) Sealing() bool {
	for _, row := range t.types {
		if row.seal != nil {
			return true
		}
	}
	return false
}

// EncodeSealed is Encode with the sealer the fields tagged pii need.
func (t *Events[S, I]) EncodeSealed(e I, s *runtime.Sealer) (runtime.EventData, error) {
	row, err := t.row(e)
	if err != nil {
		return runtime.EventData{}, err
	}
	if row.seal == nil {
		return t.Encode(e)
	}
	data, err := row.seal(e, s)
	if err != nil {
		return runtime.EventData{}, fmt.Errorf("cqrsgen: encoding event %s: %w", row.name, err)
	}
	return runtime.EventData{Name: row.name, Schema: row.schema, Data: data}, nil
}
