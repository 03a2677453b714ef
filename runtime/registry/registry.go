package registry

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/route"
)

// Events is the table of one aggregate's event types: for each, its wire
// name and schema version, its codec, its Apply method and the older stored
// forms upcast into it. Generated code builds one per aggregate (NewEvents,
// Event) and hands it to the Repository (Aggregate.Events), to projections
// (On) and to sagas (React), so that what is the same for every event, the
// dispatch by type and by wire name, is written here once instead of in
// every generated file. S is the aggregate's state, I its sealed event
// interface.
//
// An event may enter as a pointer (&Opened{} satisfies the sealed interface,
// since the method set of *T includes T's): the table treats a non-nil
// pointer as its value everywhere (Apply, Encode) and refuses a nil one with
// an error matching runtime.ErrInvalid wherever it can return one (Encode, so
// Append and Execute); Apply, which returns nothing, leaves the state as a
// nil event does.
type Events[S, I any] struct {
	streamType string
	kind       func(I) int
	types      []*EventType[S, I]
	// forms finds every stored form, current or former, by wire name and
	// schema version.
	forms route.Table[formKey, form[S, I]]
}

// EventType is one row of an Events table: an event type E of an aggregate
// with state S and event interface I. Build it with Event.
type EventType[S, I any] struct {
	name   string
	schema uint32
	names  []string
	encode func(I) ([]byte, error)
	seal   func(I, *runtime.Sealer) ([]byte, error) // fields tagged pii: see SealedEvent
	apply  func(*S, I)
	forms  []form[S, I]
	// typed holds the []typedForm[E] of the row, for On and React, which
	// know E and recover it with one type assertion when they are built.
	typed any
}

// form is one stored form (wire name, schema version) of a row, decoded
// either to the interface or straight into the state.
type form[S, I any] struct {
	name   string
	schema uint32
	decode func(data []byte) (I, error)
	evolve func(state *S, data []byte) error
	// evolveStable is evolve for data never written again (EvolveStable);
	// nil: evolve.
	evolveStable func(state *S, data []byte) error
}

// typedForm is a stored form decoded to the row's concrete type E.
type typedForm[E any] struct {
	name   string
	schema uint32
	decode func(data []byte) (E, error)
	// stable decodes data that is never written again and may be kept
	// (StableEvent); nil: decode.
	stable func(data []byte) (E, error)
}

// Upcast is an older stored form of an event type E: a wire name and
// schema version whose bytes decode into another type and are lifted to E.
// Build it with UpcastFrom.
type Upcast[E any] struct {
	name   string
	schema uint32
	decode func(data []byte) (E, error)
}

// UpcastFrom describes the stored form (name, schema) of an event type E
// whose bytes unmarshal into Old and are lifted to E by up (generated code
// passes the chain of //cqrs:upcast funcs).
func UpcastFrom[E, Old any](name string, schema uint32, unmarshal func([]byte) (Old, error), up func(Old) E) Upcast[E] {
	return Upcast[E]{name: name, schema: schema, decode: func(data []byte) (E, error) {
		old, err := unmarshal(data)
		if err != nil {
			var zero E
			return zero, err
		}
		return up(old), nil
	}}
}

// Event describes the event type E of an aggregate with state S and event
// interface I: its current wire name and schema version, its Apply method
// (a method expression such as (*Account).ApplyOpened), its codec, and the
// older forms upcast into it. The codec takes and returns events by value:
// a pointer handed to a func value escapes to the heap, which would cost an
// allocation per event. E implements I (generated code declares the
// marker methods that make it so). unmarshal (and an upcast's) must copy
// what the event keeps of its input, as generated decoders do: Load may
// hand it bytes a store lends only for the call (StreamVisitor).
func Event[I, S, E any](name string, schema uint32, apply func(*S, E), marshal func(E) ([]byte, error), unmarshal func([]byte) (E, error), upcasts ...Upcast[E]) *EventType[S, I] {
	return newEventType[I](name, schema, apply, marshal, unmarshal, nil, upcasts)
}

// StableEvent is Event for an event type whose decoder can keep its input:
// unmarshalStable decodes data whose bytes are never written again
// (runtime.EventView.Stable) and may slice its strings from data instead of
// copying them, as the decoders cqrsgen generates for events with string
// fields do (wire.StableSource). Repository.Load uses it, through
// Events.EvolveStable, for the events a store lends as stable; unmarshal
// serves every other read, and the older forms (upcasts) are always
// decoded by their own unmarshal. A string so decoded keeps the store's
// bytes it was sliced from alive (see the store's documentation).
func StableEvent[I, S, E any](name string, schema uint32, apply func(*S, E), marshal func(E) ([]byte, error), unmarshal, unmarshalStable func([]byte) (E, error), upcasts ...Upcast[E]) *EventType[S, I] {
	return newEventType[I](name, schema, apply, marshal, unmarshal, unmarshalStable, upcasts)
}

// newEventType builds the row of Event and StableEvent (stable may be nil).
func newEventType[I, S, E any](name string, schema uint32, apply func(*S, E), marshal func(E) ([]byte, error), unmarshal, stable func([]byte) (E, error), upcasts []Upcast[E]) *EventType[S, I] {
	typed := []typedForm[E]{{name: name, schema: schema, decode: unmarshal, stable: stable}}
	for _, u := range upcasts {
		typed = append(typed, typedForm[E]{name: u.name, schema: u.schema, decode: u.decode})
	}
	t := &EventType[S, I]{
		name:   name,
		schema: schema,
		typed:  typed,
		encode: func(i I) ([]byte, error) {
			e, err := eventValue[E](i)
			if err != nil {
				return nil, err
			}
			return marshal(e)
		},
		apply: func(s *S, i I) {
			if e, err := eventValue[E](i); err == nil {
				apply(s, e)
			}
		},
	}
	for _, f := range typed {
		if !slices.Contains(t.names, f.name) {
			t.names = append(t.names, f.name)
		}
		var evolveStable func(*S, []byte) error
		if f.stable != nil {
			evolveStable = func(s *S, data []byte) error {
				e, err := f.stable(data)
				if err != nil {
					return err
				}
				apply(s, e)
				return nil
			}
		}
		t.forms = append(t.forms, form[S, I]{
			name:         f.name,
			schema:       f.schema,
			evolveStable: evolveStable,
			decode: func(data []byte) (I, error) {
				e, err := f.decode(data)
				if err != nil {
					var zero I
					return zero, err
				}
				i, _ := any(e).(I)
				return i, nil
			},
			evolve: func(s *S, data []byte) error {
				e, err := f.decode(data)
				if err != nil {
					return err
				}
				apply(s, e)
				return nil
			},
		})
	}
	return t
}

// eventValue returns v as an E: v itself, or what a non-nil *E points to.
// Anything else (a nil pointer) is an error matching runtime.ErrInvalid.
func eventValue[E, I any](v I) (E, error) {
	switch x := any(v).(type) {
	case E:
		return x, nil
	case *E:
		if x != nil {
			return *x, nil
		}
	}
	var zero E
	return zero, fmt.Errorf("cqrsgen: %T(nil) is not an event: %w", v, runtime.ErrInvalid)
}

// NewEvents returns the event table of an aggregate stored under
// streamType. kind returns the index in types of an event's row; generated
// code passes the sealed interface's marker method (AccountEvent.isAccountEvent),
// which each event type implements by returning its index.
func NewEvents[S, I any](streamType string, kind func(I) int, types ...*EventType[S, I]) *Events[S, I] {
	t := &Events[S, I]{streamType: streamType, kind: kind, types: types}
	for _, row := range types {
		for _, f := range row.forms {
			t.forms.Add(formKey{f.name, f.schema}, f)
		}
	}
	return t
}

// StreamType returns the stream type the aggregate's events are stored
// under.
func (t *Events[S, I]) StreamType() string { return t.streamType }

// Retire records stored forms of an event type retired with
// //cqrs:retired: the wire name and each of schemas. Decoding one returns
// runtime.ErrRetired, which the Repository skips (the event's version still counts);
// retired names are not among Names. It returns t, for generated code.
func (t *Events[S, I]) Retire(name string, schemas ...uint32) *Events[S, I] {
	for _, v := range schemas {
		t.forms.Add(formKey{name, v}, form[S, I]{
			name: name, schema: v,
			decode: func([]byte) (I, error) {
				var zero I
				return zero, runtime.ErrRetired
			},
			evolve: func(*S, []byte) error { return runtime.ErrRetired },
		})
	}
	return t
}

// Names returns every wire name the table decodes, current names before
// former ones of each event type, in table order; a new slice each call.
func (t *Events[S, I]) Names() []string {
	var out []string
	for _, row := range t.types {
		for _, n := range row.names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// row returns e's row, or an error for a nil event or nil pointer.
func (t *Events[S, I]) row(e I) (*EventType[S, I], error) {
	if any(e) == nil {
		return nil, fmt.Errorf("cqrsgen: nil event of %s: %w", t.streamType, runtime.ErrInvalid)
	}
	k, ok := index(t.kind, e)
	if !ok {
		return nil, fmt.Errorf("cqrsgen: %T(nil) is not an event of %s: %w", e, t.streamType, runtime.ErrInvalid)
	}
	if k < 0 || k >= len(t.types) {
		return nil, fmt.Errorf("cqrsgen: %T is not an event of %s: %w", e, t.streamType, runtime.ErrInvalid)
	}
	return t.types[k], nil
}

// index calls the marker method kind on v. Called through a nil pointer,
// a value-receiver method panics before it runs (the method set of *T
// includes T's methods, but they need the value); no marker can do
// anything else, so a recovered panic means exactly that: ok is false.
func index[I any](kind func(I) int, v I) (k int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return kind(v), true
}

// Apply evolves state by e through its type's Apply method. A pointer to
// an event is applied as its value; a nil event or nil pointer changes
// nothing (Append and Execute refuse them).
func (t *Events[S, I]) Apply(state *S, e I) {
	if row, err := t.row(e); err == nil {
		row.apply(state, e)
	}
}

// Encode encodes e with its wire name and schema version. A pointer to an
// event is encoded as its value; a nil event or nil pointer is an error
// matching runtime.ErrInvalid.
func (t *Events[S, I]) Encode(e I) (runtime.EventData, error) {
	row, err := t.row(e)
	if err != nil {
		return runtime.EventData{}, err
	}
	data, err := row.encode(e)
	if err != nil {
		return runtime.EventData{}, fmt.Errorf("cqrsgen: encoding event %s: %w", row.name, err)
	}
	return runtime.EventData{Name: row.name, Schema: row.schema, Data: data}, nil
}

// lookup returns the stored form (name, schema).
func (t *Events[S, I]) lookup(name string, schema uint32) (form[S, I], error) {
	if f, ok := t.forms.Get(formKey{name, schema}); ok {
		return f, nil
	}
	// The name is copied: it may be a StreamVisitor's borrowed bytes.
	return form[S, I]{}, &runtime.UnknownEventError{Name: strings.Clone(name), Schema: schema}
}

// Decode decodes a stored event from its wire name and schema version into
// its current type, upcasting older versions and former names. An unknown
// name or version is a *runtime.UnknownEventError.
func (t *Events[S, I]) Decode(name string, schema uint32, data []byte) (I, error) {
	f, err := t.lookup(name, schema)
	if err != nil {
		var zero I
		return zero, err
	}
	return f.decode(data)
}

// Evolve decodes a stored event and applies it to state in one step,
// without boxing it in the interface (runtime.Repository.Load's path). An
// unknown name or version is a *runtime.UnknownEventError.
func (t *Events[S, I]) Evolve(state *S, name string, schema uint32, data []byte) error {
	f, err := t.lookup(name, schema)
	if err != nil {
		return err
	}
	return f.evolve(state, data)
}

// EvolveStable is Evolve for data whose bytes are never written again
// (runtime.EventView.Stable; see runtime.StableEvolver): an event type
// described by StableEvent decodes it without copying its strings, which
// then keep data alive; any other form is decoded as Evolve decodes it.
func (t *Events[S, I]) EvolveStable(state *S, name string, schema uint32, data []byte) error {
	f, err := t.lookup(name, schema)
	if err != nil {
		return err
	}
	if f.evolveStable != nil {
		return f.evolveStable(state, data)
	}
	return f.evolve(state, data)
}

// typedForms returns the stored forms of the row whose type is E.
func typedForms[E, S, I any](t *Events[S, I]) ([]typedForm[E], error) {
	for _, row := range t.types {
		if fs, ok := row.typed.([]typedForm[E]); ok {
			return fs, nil
		}
	}
	var zero E
	return nil, fmt.Errorf("cqrsgen: %T is not an event of %s: %w", zero, t.streamType, runtime.ErrInvalid)
}

// Typed returns what tables that hand records to typed functions
// (projection.On, saga.React) need of event type E in t: its stored forms'
// distinct wire names, current first, and a decoder of a record stored
// under one of them into E, whose failure is a *runtime.DecodeError naming the
// record. When E is not an event of t, err matches runtime.ErrInvalid.
func Typed[E, S, I any](t *Events[S, I]) (names []string, decode func(runtime.Record) (E, error), err error) {
	fs, err := typedForms[E](t)
	return formNames(fs), func(rec runtime.Record) (E, error) { return decodeTyped(fs, rec) }, err
}

// Commands is the table of one aggregate's command types, each routed to
// its Handle method by Decide. S is the aggregate's state, C its sealed
// command interface, I its sealed event interface. Like Events, it treats a
// non-nil pointer to a command as its value and refuses a nil one.
type Commands[S, C, I any] struct {
	kind   func(C) int
	decide []func(*S, C) ([]I, error)
}

// CommandType is one row of a Commands table. Build it with Command.
type CommandType[S, C, I any] struct {
	decide func(*S, C) ([]I, error)
}

// Command describes a command type Cmd of an aggregate with state S by its
// Handle method (a method expression such as (*Account).HandleDeposit).
func Command[C, S, Cmd, I any](handle func(*S, Cmd) ([]I, error)) CommandType[S, C, I] {
	return CommandType[S, C, I]{decide: func(s *S, c C) ([]I, error) {
		v, ok := any(c).(Cmd)
		if !ok {
			p, _ := any(c).(*Cmd)
			if p == nil {
				return nil, fmt.Errorf("cqrsgen: %T(nil) is not a command: %w", c, runtime.ErrInvalid)
			}
			v = *p
		}
		return handle(s, v)
	}}
}

// NewCommands returns the command table of an aggregate; kind is the sealed
// command interface's marker method, which returns a command's index in
// types.
func NewCommands[S, C, I any](kind func(C) int, types ...CommandType[S, C, I]) *Commands[S, C, I] {
	t := &Commands[S, C, I]{kind: kind}
	for _, ct := range types {
		t.decide = append(t.decide, ct.decide)
	}
	return t
}

// Decide decides c against state through its type's Handle method and
// returns the events to append. A nil command or nil pointer is an error
// matching runtime.ErrInvalid.
func (t *Commands[S, C, I]) Decide(state *S, c C) ([]I, error) {
	if any(c) == nil {
		return nil, fmt.Errorf("cqrsgen: nil command: %w", runtime.ErrInvalid)
	}
	k, ok := index(t.kind, c)
	if !ok {
		return nil, fmt.Errorf("cqrsgen: %T(nil) is not a command: %w", c, runtime.ErrInvalid)
	}
	if k < 0 || k >= len(t.decide) {
		return nil, fmt.Errorf("cqrsgen: %T is not a command of this aggregate: %w", c, runtime.ErrInvalid)
	}
	return t.decide[k](state, c)
}

// formKey names a stored form: wire name and schema version.
type formKey struct {
	name   string
	schema uint32
}

// formNames returns the distinct wire names of fs, in order.
func formNames[E any](fs []typedForm[E]) []string {
	var names []string
	for _, f := range fs {
		if !slices.Contains(names, f.name) {
			names = append(names, f.name)
		}
	}
	return names
}

// decodeTyped decodes rec with the form of fs stored under its name and
// schema version; a failure is a *runtime.DecodeError naming the record.
func decodeTyped[E any](fs []typedForm[E], rec runtime.Record) (E, error) {
	for _, f := range fs {
		if f.name == rec.Name && f.schema == rec.Schema {
			e, err := f.decode(rec.Data)
			if err != nil {
				return e, &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: rec.Name, Err: err}
			}
			return e, nil
		}
	}
	var zero E
	return zero, &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: rec.Name,
		Err: &runtime.UnknownEventError{Name: rec.Name, Schema: rec.Schema}}
}

var _ runtime.StableEvolver[struct{}] = (*Events[struct{}, any])(nil)
