package registry_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// A hand-written aggregate built the way generated code builds one: sealed
// interfaces whose markers return the row, and tables of rows.

type meter struct{ Reading, Resets int64 }

type meterEvent interface{ isMeterEvent() int }

type read struct{ Value int64 }
type reset struct{}

// readV1 is how read was stored at version 1 (a value in tenths).
type readV1 struct{ Tenths int64 }

func (read) isMeterEvent() int  { return 0 }
func (reset) isMeterEvent() int { return 1 }

type meterCommand interface{ isMeterCommand() int }

type record struct{ Value int64 }

func (record) isMeterCommand() int { return 0 }

func (m *meter) applyRead(e read) { m.Reading = e.Value }
func (m *meter) applyReset(reset) { m.Reading, m.Resets = 0, m.Resets+1 }
func readV1ToV2(old readV1) read  { return read{Value: old.Tenths / 10} }
func (m *meter) handleRecord(c record) ([]meterEvent, error) {
	if c.Value < 0 {
		return []meterEvent{&reset{}}, nil // a pointer, taken as its value
	}
	return []meterEvent{read(c)}, nil
}

func decodeReadV1(data []byte) (e readV1, err error) {
	e.Tenths, err = unmarshalInt(data)
	return e, err
}

func marshalInt(v int64) []byte { return binary.AppendVarint(nil, v) }

func unmarshalInt(data []byte) (int64, error) {
	v, n := binary.Varint(data)
	if n <= 0 || n != len(data) {
		return 0, errors.New("meter: bad varint")
	}
	return v, nil
}

var (
	meterEvents = registry.NewEvents("meter", meterEvent.isMeterEvent,
		registry.Event[meterEvent]("meter.read", 2, (*meter).applyRead,
			func(e read) ([]byte, error) { return marshalInt(e.Value), nil },
			func(data []byte) (e read, err error) { e.Value, err = unmarshalInt(data); return e, err },
			registry.UpcastFrom("meter.read", 1, decodeReadV1, readV1ToV2),
			registry.UpcastFrom("meter.sampled", 1, decodeReadV1, readV1ToV2)),
		registry.Event[meterEvent]("meter.reset", 1, (*meter).applyReset,
			func(reset) ([]byte, error) { return []byte{}, nil },
			func(data []byte) (reset, error) {
				if len(data) != 0 {
					return reset{}, errors.New("meter: reset has no body")
				}
				return reset{}, nil
			}),
	)
	meterCommands = registry.NewCommands(meterCommand.isMeterCommand, registry.Command[meterCommand]((*meter).handleRecord))
	meterAgg      = &runtime.Aggregate[meter, meterEvent, meterCommand]{Type: "meter", Events: meterEvents, Decide: meterCommands.Decide}
)

func TestEventsEncodeDecode(t *testing.T) {
	for _, c := range []struct {
		name    string
		event   meterEvent
		want    runtime.EventData
		invalid bool
	}{
		{name: "value", event: read{Value: 7}, want: runtime.EventData{Name: "meter.read", Schema: 2, Data: marshalInt(7)}},
		{name: "pointer as its value", event: &read{Value: 7}, want: runtime.EventData{Name: "meter.read", Schema: 2, Data: marshalInt(7)}},
		{name: "empty body", event: reset{}, want: runtime.EventData{Name: "meter.reset", Schema: 1, Data: []byte{}}},
		{name: "nil", event: nil, invalid: true},
		{name: "nil pointer", event: (*read)(nil), invalid: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := meterEvents.Encode(c.event)
			if c.invalid {
				if !errors.Is(err, runtime.ErrInvalid) {
					t.Fatalf("Encode(%#v) = %v, want an error matching ErrInvalid", c.event, err)
				}
				return
			}
			if err != nil || got.Name != c.want.Name || got.Schema != c.want.Schema || !slices.Equal(got.Data, c.want.Data) {
				t.Fatalf("Encode(%#v) = %+v, %v; want %+v", c.event, got, err, c.want)
			}
			back, err := meterEvents.Decode(got.Name, got.Schema, got.Data)
			if err != nil {
				t.Fatal(err)
			}
			if _, isPtr := back.(*read); isPtr {
				t.Fatalf("Decode returned a pointer %#v; events travel as values", back)
			}
		})
	}
}

func TestEventsDecodeForms(t *testing.T) {
	var unknown *runtime.UnknownEventError
	for _, c := range []struct {
		name   string
		schema uint32
		data   []byte
		want   meterEvent
		err    any // *runtime.UnknownEventError target, or nil for a codec error
	}{
		{name: "meter.read", schema: 2, data: marshalInt(5), want: read{Value: 5}},
		{name: "meter.read", schema: 1, data: marshalInt(50), want: read{Value: 5}},
		{name: "meter.sampled", schema: 1, data: marshalInt(70), want: read{Value: 7}},
		{name: "meter.reset", schema: 1, data: []byte{}, want: reset{}},
		{name: "meter.read", schema: 3, data: marshalInt(5), err: &unknown},
		{name: "meter.sampled", schema: 2, data: marshalInt(5), err: &unknown},
		{name: "meter.other", schema: 1, data: nil, err: &unknown},
		{name: "meter.read", schema: 2, data: []byte{0xff}},
	} {
		got, err := meterEvents.Decode(c.name, c.schema, c.data)
		switch {
		case c.want != nil && (err != nil || got != c.want):
			t.Errorf("Decode(%s@%d) = %#v, %v; want %#v", c.name, c.schema, got, err, c.want)
		case c.want == nil && c.err != nil && !errors.As(err, c.err):
			t.Errorf("Decode(%s@%d) = %#v, %v; want a *runtime.UnknownEventError", c.name, c.schema, got, err)
		case c.want == nil && err == nil:
			t.Errorf("Decode(%s@%d) = %#v, want an error", c.name, c.schema, got)
		}
	}
	if got, want := meterEvents.Names(), []string{"meter.read", "meter.sampled", "meter.reset"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestEventsApplyAndDecide(t *testing.T) {
	var m meter
	meterEvents.Apply(&m, read{Value: 3})
	meterEvents.Apply(&m, &read{Value: 4}) // a pointer is applied as its value
	meterEvents.Apply(&m, nil)
	meterEvents.Apply(&m, (*reset)(nil)) // changes nothing; Append refuses it
	if m != (meter{Reading: 4}) {
		t.Fatalf("after applying: %+v", m)
	}
	for _, c := range []struct {
		name    string
		cmd     meterCommand
		want    []meterEvent
		invalid bool
	}{
		{name: "value", cmd: record{Value: 9}, want: []meterEvent{read{Value: 9}}},
		{name: "pointer as its value", cmd: &record{Value: 9}, want: []meterEvent{read{Value: 9}}},
		{name: "nil", cmd: nil, invalid: true},
		{name: "nil pointer", cmd: (*record)(nil), invalid: true},
	} {
		got, err := meterCommands.Decide(&m, c.cmd)
		if c.invalid != errors.Is(err, runtime.ErrInvalid) || !slices.Equal(got, c.want) {
			t.Errorf("%s: Decide(%#v) = %#v, %v", c.name, c.cmd, got, err)
		}
	}
}

// TestRepositoryPointers: a pointer never enters the store or the state
// silently: Append and Execute take it as its value, and refuse a nil one.
func TestRepositoryPointers(t *testing.T) {
	ctx := context.Background()
	repo := runtime.NewRepository(memory.New(), meterAgg)
	if _, err := repo.Append(ctx, "m", runtime.NoStream, &read{Value: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Append(ctx, "m", runtime.AnyVersion, (*read)(nil)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Append of a nil pointer: %v, want ErrInvalid", err)
	}
	if _, err := repo.Execute(ctx, "m", &record{Value: -1}); err != nil { // decides &reset{}
		t.Fatal(err)
	}
	if _, err := repo.Execute(ctx, "m", (*record)(nil)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Execute of a nil pointer: %v, want ErrInvalid", err)
	}
	m, v, err := repo.Load(ctx, "m")
	if err != nil || v != 2 || *m != (meter{Reading: 0, Resets: 1}) {
		t.Fatalf("Load = %+v, %d, %v", m, v, err)
	}
	var got []meterEvent
	for env, err := range repo.Events(ctx, "m", 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, env.Event)
	}
	if want := []meterEvent{read{Value: 2}, reset{}}; !slices.Equal(got, want) {
		t.Fatalf("stored events %#v, want values %#v", got, want)
	}
}

func TestHandlersAndReactions(t *testing.T) {
	ctx := context.Background()
	var reads []int64
	var resets int
	h := projection.NewHandlers(
		projection.On(meterEvents, func(_ context.Context, e runtime.Envelope[read]) error {
			reads = append(reads, e.Event.Value)
			return nil
		}),
		projection.On(meterEvents, func(context.Context, runtime.Envelope[reset]) error { resets++; return nil }),
	)
	if got, want := h.Names(), []string{"meter.read", "meter.sampled", "meter.reset"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	rec := func(typ, name string, schema uint32, data []byte) runtime.Record {
		return runtime.Record{Stream: runtime.StreamID{Type: typ, ID: "m"}, Name: name, Schema: schema, Data: data}
	}
	for _, r := range []runtime.Record{
		rec("meter", "meter.read", 2, marshalInt(1)),
		rec("meter", "meter.sampled", 1, marshalInt(20)),
		rec("other", "meter.read", 2, []byte{0xff}), // another stream type: skipped, not decoded
		rec("meter", "meter.reset", 1, nil),
	} {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatalf("Handle(%+v): %v", r, err)
		}
	}
	if !slices.Equal(reads, []int64{1, 2}) || resets != 1 {
		t.Fatalf("handled reads %v, resets %d", reads, resets)
	}
	var de *runtime.DecodeError
	if err := h.Handle(ctx, rec("meter", "meter.read", 2, []byte{0xff})); !errors.As(err, &de) || !errors.Is(err, runtime.ErrCorrupt) {
		t.Fatalf("Handle of bad bytes: %v, want a *runtime.DecodeError", err)
	}

	// A handler of a type that is not in the table fails every record,
	// rather than skipping them silently.
	bad := projection.NewHandlers(projection.On(meterEvents, func(context.Context, runtime.Envelope[record]) error { return nil }))
	if err := bad.Handle(ctx, rec("meter", "meter.read", 2, marshalInt(1))); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("handler of a non-event: %v, want ErrInvalid", err)
	}

	type watch struct{ seen int64 }
	rs := saga.NewReactions(saga.React(meterEvents,
		func(_ *watch, e runtime.Envelope[read]) (string, bool) { return "w-" + e.ID, e.Event.Value > 0 },
		func(w *watch, _ context.Context, e runtime.Envelope[read], _ *saga.Actions) error {
			w.seen = e.Event.Value
			return nil
		}))
	if got := rs.Names(); !slices.Equal(got, []string{"meter.read", "meter.sampled"}) {
		t.Errorf("reaction names %q", got)
	}
	instance, react, ok, err := rs.Correlate(rec("meter", "meter.read", 1, marshalInt(30)))
	if err != nil || !ok || instance != "w-m" {
		t.Fatalf("Correlate = %q, %v, %v", instance, ok, err)
	}
	var w watch
	if err := react(ctx, &w, nil); err != nil || w.seen != 3 {
		t.Fatalf("reaction: %+v, %v", w, err)
	}
	if _, _, ok, err := rs.Correlate(rec("meter", "meter.reset", 1, nil)); ok || err != nil {
		t.Fatalf("Correlate of an event without reaction: %v, %v", ok, err)
	}
}

// TestEventsManyForms: a table with more stored forms than the router
// scans (here twelve) finds each through its map, the same as a small one.
func TestEventsManyForms(t *testing.T) {
	var ups []registry.Upcast[read]
	for i := range 10 {
		ups = append(ups, registry.UpcastFrom(fmt.Sprintf("meter.old%d", i), 1, decodeReadV1, readV1ToV2))
	}
	big := registry.NewEvents("meter", meterEvent.isMeterEvent,
		registry.Event[meterEvent]("meter.read", 2, (*meter).applyRead,
			func(e read) ([]byte, error) { return marshalInt(e.Value), nil },
			func(data []byte) (e read, err error) { e.Value, err = unmarshalInt(data); return e, err },
			ups...),
		registry.Event[meterEvent]("meter.reset", 1, (*meter).applyReset,
			func(reset) ([]byte, error) { return []byte{}, nil },
			func([]byte) (reset, error) { return reset{}, nil }),
	)
	for _, c := range []struct {
		name   string
		schema uint32
		want   meterEvent
	}{
		{"meter.read", 2, read{Value: 40}},
		{"meter.old0", 1, read{Value: 4}},
		{"meter.old9", 1, read{Value: 4}},
		{"meter.reset", 1, reset{}},
	} {
		if got, err := big.Decode(c.name, c.schema, marshalInt(40)); err != nil || got != c.want {
			t.Errorf("Decode(%s@%d) = %#v, %v; want %#v", c.name, c.schema, got, err, c.want)
		}
	}
	var unknown *runtime.UnknownEventError
	if _, err := big.Decode("meter.old9", 2, nil); !errors.As(err, &unknown) {
		t.Errorf("Decode of an unknown version: %v", err)
	}
	if n := len(big.Names()); n != 12 {
		t.Errorf("%d names, want 12", n)
	}
}
