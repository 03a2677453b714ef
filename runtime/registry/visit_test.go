package registry_test

import (
	"context"
	"errors"
	"testing"
	"unsafe"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/registry"
)

// countingVisitor is a store whose VisitStream counts its calls and, like
// a store lending its buffers, shows each event's name from a buffer it
// overwrites after fn returns.
type countingVisitor struct {
	runtime.Store
	visits int
}

func (c *countingVisitor) VisitStream(ctx context.Context, stream runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	c.visits++
	var buf []byte
	for rec, err := range c.ReadStream(ctx, stream, after) {
		if err != nil {
			return err
		}
		buf = append(buf[:0], rec.Name...)
		v := runtime.EventView{Version: rec.Version, Position: rec.Position, Schema: rec.Schema, Data: rec.Data}
		if len(buf) > 0 {
			v.Name = unsafe.String(&buf[0], len(buf))
		}
		err := fn(&v)
		for i := range buf {
			buf[i] = '#' // the lent bytes change once fn has returned
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// hidden hides the store's StreamVisitor: Load reads through ReadStream.
type hidden struct{ runtime.Store }

// TestRepositoryLoadThroughVisitor: Load of an aggregate with an event
// table reads through the store's StreamVisitor, to the same state and
// version as through ReadStream, upcasts and retired events included, and
// its errors do not keep the lent bytes.
func TestRepositoryLoadThroughVisitor(t *testing.T) {
	ctx := context.Background()
	events := registry.NewEvents("meter", meterEvent.isMeterEvent,
		registry.Event[meterEvent]("meter.read", 2, (*meter).applyRead,
			func(e read) ([]byte, error) { return marshalInt(e.Value), nil },
			func(data []byte) (e read, err error) { e.Value, err = unmarshalInt(data); return e, err },
			registry.UpcastFrom("meter.read", 1, decodeReadV1, readV1ToV2)),
		registry.Event[meterEvent]("meter.reset", 1, (*meter).applyReset,
			func(reset) ([]byte, error) { return []byte{}, nil },
			func([]byte) (reset, error) { return reset{}, nil }),
	).Retire("meter.gone", 1)
	agg := &runtime.Aggregate[meter, meterEvent, meterCommand]{Type: "meter", Events: events}
	mem := memory.New()
	st := runtime.StreamID{Type: "meter", ID: "v"}
	if _, err := mem.Append(ctx, runtime.AppendRequest{Stream: st, Events: []runtime.EventData{
		{Name: "meter.read", Schema: 1, Data: marshalInt(50)}, // 5, upcast
		{Name: "meter.reset", Schema: 1, Data: []byte{}},
		{Name: "meter.gone", Schema: 1, Data: []byte("old")}, // retired: skipped, counted
		{Name: "meter.read", Schema: 2, Data: marshalInt(8)},
		{Name: "meter.gone", Schema: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	visitor := &countingVisitor{Store: mem}
	want := meter{Reading: 8, Resets: 1}
	for _, c := range []struct {
		name   string
		store  runtime.Store
		visits int
	}{
		{"memory store", mem, 0},
		{"visitor", visitor, 1},
		{"ReadStream", hidden{mem}, 0},
	} {
		repo := runtime.NewRepository(c.store, agg)
		before := visitor.visits
		m, v, err := repo.Load(ctx, "v")
		if err != nil || v != 5 || *m != want {
			t.Errorf("%s: Load = %+v, %d, %v; want %+v, 5", c.name, m, v, err, want)
		}
		if got := visitor.visits - before; got != c.visits {
			t.Errorf("%s: %d visits, want %d", c.name, got, c.visits)
		}
	}

	// An unknown event fails the load with a DecodeError whose name is its
	// own copy, not the lent bytes.
	if _, err := mem.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 5, Events: []runtime.EventData{{Name: "Mystery", Schema: 3}}}); err != nil {
		t.Fatal(err)
	}
	for _, store := range []runtime.Store{visitor, hidden{mem}} {
		_, _, err := runtime.NewRepository(store, agg).Load(ctx, "v")
		var de *runtime.DecodeError
		var ue *runtime.UnknownEventError
		if !errors.As(err, &de) || !errors.As(err, &ue) || de.Version != 6 || de.Position != 6 || de.Stream != st ||
			de.What != "event Mystery" || ue.Name != "Mystery" || ue.Schema != 3 {
			t.Errorf("Load over an unknown event: %v, want a DecodeError at version 6 for an UnknownEventError of Mystery", err)
		}
	}
}

// TestDecoder: a typed decoder decodes the current and the former forms
// of its type, refuses the others, and is refused for a type that is not
// the table's.
func TestDecoder(t *testing.T) {
	dec, err := registry.Decoder[read](meterEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		schema uint32
		data   []byte
		want   read
	}{
		{"meter.read", 2, marshalInt(7), read{Value: 7}},
		{"meter.read", 1, marshalInt(70), read{Value: 7}},    // upcast
		{"meter.sampled", 1, marshalInt(90), read{Value: 9}}, // former name
	} {
		if got, err := dec(c.name, c.schema, c.data); err != nil || got != c.want {
			t.Errorf("decode %s v%d = %+v, %v; want %+v", c.name, c.schema, got, err, c.want)
		}
	}
	var ue *runtime.UnknownEventError
	if _, err := dec("meter.reset", 1, nil); !errors.As(err, &ue) || ue.Name != "meter.reset" {
		t.Errorf("decode of another type's form: %v, want an UnknownEventError", err)
	}
	if _, err := dec("meter.read", 2, []byte{0x80}); err == nil {
		t.Error("decode of a bad body: no error")
	}
	if _, err := registry.Decoder[record](meterEvents); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Decoder of a type that is not an event of the table: %v, want ErrInvalid", err)
	}
}

// TestEvolveStable: EvolveStable decodes the current form of a
// StableEvent row with its stable decoder, and every other form (an
// upcast, a row built by Event) as Evolve does; retired and unknown forms
// fail as under Evolve.
func TestEvolveStable(t *testing.T) {
	var stable, plain int
	events := registry.NewEvents("meter", meterEvent.isMeterEvent,
		registry.StableEvent[meterEvent]("meter.read", 2, (*meter).applyRead,
			func(e read) ([]byte, error) { return marshalInt(e.Value), nil },
			func(data []byte) (e read, err error) { plain++; e.Value, err = unmarshalInt(data); return e, err },
			func(data []byte) (e read, err error) { stable++; e.Value, err = unmarshalInt(data); return e, err },
			registry.UpcastFrom("meter.read", 1, decodeReadV1, readV1ToV2)),
		registry.Event[meterEvent]("meter.reset", 1, (*meter).applyReset,
			func(reset) ([]byte, error) { return []byte{}, nil },
			func([]byte) (reset, error) { plain++; return reset{}, nil }),
	).Retire("meter.gone", 1)
	var m meter
	for _, c := range []struct {
		name          string
		schema        uint32
		data          []byte
		stable, plain int
		want          meter
	}{
		{"meter.read", 2, marshalInt(9), 1, 0, meter{Reading: 9}},
		{"meter.reset", 1, nil, 0, 1, meter{Resets: 1}},
		{"meter.read", 1, marshalInt(40), 0, 0, meter{Reading: 4, Resets: 1}}, // upcast: its own decoder
	} {
		stable, plain = 0, 0
		if err := events.EvolveStable(&m, c.name, c.schema, c.data); err != nil || m != c.want || stable != c.stable || plain != c.plain {
			t.Errorf("EvolveStable %s v%d: %+v, %v, stable decodes %d, plain %d; want %+v, %d, %d",
				c.name, c.schema, m, err, stable, plain, c.want, c.stable, c.plain)
		}
	}
	stable, plain = 0, 0
	if err := events.Evolve(&m, "meter.read", 2, marshalInt(3)); err != nil || m.Reading != 3 || stable != 0 || plain != 1 {
		t.Errorf("Evolve of a StableEvent row: %+v, %v, stable decodes %d, plain %d; want its plain decoder", m, err, stable, plain)
	}
	if err := events.EvolveStable(&m, "meter.gone", 1, nil); !errors.Is(err, runtime.ErrRetired) {
		t.Errorf("EvolveStable of a retired form: %v, want ErrRetired", err)
	}
	var ue *runtime.UnknownEventError
	if err := events.EvolveStable(&m, "meter.what", 1, nil); !errors.As(err, &ue) || ue.Name != "meter.what" {
		t.Errorf("EvolveStable of an unknown form: %v, want an UnknownEventError", err)
	}
}
