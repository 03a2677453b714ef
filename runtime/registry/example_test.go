package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
)

// A thermostat written the way cqrsgen generates an aggregate: a sealed
// event interface whose marker method returns the type's row, and tables
// built from rows. Its event "thermo.set" was stored in Fahrenheit at
// schema 1; schema 2 stores Celsius, and the table upcasts the old form.

type thermostat struct{ Celsius int }

type thermoEvent interface{ isThermoEvent() int }

type set struct{ Celsius int }      // thermo.set, schema 2
type setV1 struct{ Fahrenheit int } // thermo.set, schema 1

func (set) isThermoEvent() int { return 0 }

type thermoCommand interface{ isThermoCommand() int }

type setTo struct{ Celsius int }

func (setTo) isThermoCommand() int { return 0 }

func (t *thermostat) applySet(e set) { t.Celsius = e.Celsius }

func (t *thermostat) handleSetTo(c setTo) ([]thermoEvent, error) {
	if c.Celsius < 5 || c.Celsius > 30 {
		return nil, errors.New("thermostat: out of range")
	}
	return []thermoEvent{set(c)}, nil
}

func atoi[E any](f func(int) E) func([]byte) (E, error) {
	return func(b []byte) (E, error) { n, err := strconv.Atoi(string(b)); return f(n), err }
}

var (
	thermoEvents = registry.NewEvents("thermostat", thermoEvent.isThermoEvent,
		registry.Event[thermoEvent]("thermo.set", 2, (*thermostat).applySet,
			func(e set) ([]byte, error) { return strconv.AppendInt(nil, int64(e.Celsius), 10), nil },
			atoi(func(n int) set { return set{Celsius: n} }),
			registry.UpcastFrom("thermo.set", 1, atoi(func(n int) setV1 { return setV1{Fahrenheit: n} }),
				func(old setV1) set { return set{Celsius: (old.Fahrenheit - 32) * 5 / 9} })),
	)
	thermoCommands = registry.NewCommands(thermoCommand.isThermoCommand,
		registry.Command[thermoCommand]((*thermostat).handleSetTo))
)

// The tables plug into a Repository as generated code does: Events gives it
// Apply and the codec, Commands.Decide routes each command to its Handle
// method. Events stored under an older schema are upcast when loaded.
func ExampleNewEvents() {
	ctx := context.Background()
	store := memory.New()
	thermostats := runtime.NewRepository(store, &runtime.Aggregate[thermostat, thermoEvent, thermoCommand]{
		Type:   thermoEvents.StreamType(),
		Events: thermoEvents,
		Decide: thermoCommands.Decide,
	})

	if _, err := thermostats.Execute(ctx, "hall", setTo{Celsius: 21}); err != nil {
		fmt.Println(err)
	}
	_, err := thermostats.Execute(ctx, "hall", setTo{Celsius: 90})
	fmt.Println("rejected:", err)

	// An event an older build wrote, at schema 1 (Fahrenheit).
	_, _ = store.Append(ctx, runtime.AppendRequest{
		Stream:   runtime.StreamID{Type: "thermostat", ID: "hall"},
		Expected: 1,
		Events:   []runtime.EventData{{Name: "thermo.set", Schema: 1, Data: []byte("68")}},
	})
	state, version, _ := thermostats.Load(ctx, "hall")
	fmt.Println("version", version, "celsius", state.Celsius)
	fmt.Println("names:", thermoEvents.Names())
	// Output:
	// rejected: thermostat: out of range
	// version 2 celsius 20
	// names: [thermo.set]
}

// Decoder decodes any stored form of one event type straight into that
// type, as typed projection and saga handlers need; an unknown form is a
// *runtime.UnknownEventError.
func ExampleDecoder() {
	decode, err := registry.Decoder[set](thermoEvents)
	if err != nil {
		fmt.Println(err)
		return
	}
	current, _ := decode("thermo.set", 2, []byte("19"))
	old, _ := decode("thermo.set", 1, []byte("50"))
	fmt.Println(current.Celsius, old.Celsius)

	_, err = decode("thermo.set", 3, []byte("19"))
	var unknown *runtime.UnknownEventError
	fmt.Println("unknown:", errors.As(err, &unknown))
	// Output:
	// 19 10
	// unknown: true
}
