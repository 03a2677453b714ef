package shop_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/examples/shop/shop"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/vmihailenco/msgpack/v5"
)

// shippedV1 appends, through the plain runtime.Store, an order whose
// shipment was stored by the previous release: shop.order.shipped at
// schema version 1, Carrier holding "DHL Express", encoded by reflection
// msgpack as any release before the split wrote it.
func shippedV1(ctx context.Context, s runtime.Store, repo *shop.OrderRepository, id string) error {
	v, err := repo.Append(ctx, id, runtime.NoStream,
		shop.OrderCreated{Customer: "ada"},
		shop.LineAdded{SKU: "mug", Qty: 1, UnitPrice: 12_50},
		shop.OrderPlaced{Total: 12_50},
		shop.OrderPaid{Amount: 12_50, PaymentRef: "p1"})
	if err != nil {
		return err
	}
	data, err := msgpack.Marshal(struct{ Carrier string }{"DHL Express"})
	if err != nil {
		return err
	}
	_, err = s.Append(ctx, runtime.AppendRequest{
		Stream:   runtime.StreamID{Type: shop.OrderStreamType, ID: id},
		Expected: v,
		Events:   []runtime.EventData{{Name: shop.OrderShippedEventName, Schema: 1, Data: data}},
	})
	return err
}

// TestShippedV1ReadAsV2: an order shipped under schema version 1 loads
// and streams as the version 2 OrderShipped, split by the upcaster; new
// shipments are written at version 2.
func TestShippedV1ReadAsV2(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	repo := shop.NewOrderRepository(s)
	if err := shippedV1(ctx, s, repo, "order-1"); err != nil {
		t.Fatal(err)
	}

	o, v, err := repo.Load(ctx, "order-1")
	if err != nil || v != 5 || o.Status != shop.StatusShipped || o.Carrier != "DHL" {
		t.Fatalf("load: %+v %d %v", o, v, err)
	}
	var last runtime.Envelope[shop.OrderEvent]
	for env, err := range repo.Events(ctx, "order-1", 4) {
		if err != nil {
			t.Fatal(err)
		}
		last = env
	}
	if want := (shop.OrderShipped{Carrier: "DHL", Service: "Express"}); last.Event != want || last.Schema != 1 {
		t.Fatalf("event %#v stored at schema %d, want %#v from schema 1", last.Event, last.Schema, want)
	}
	// The handlers projections are built from upcast too, and get the
	// concrete event.
	var e shop.OrderShipped
	h := projection.NewHandlers(projection.On(shop.OrderEvents(), func(_ context.Context, env runtime.Envelope[shop.OrderShipped]) error {
		e = env.Event
		return nil
	}))
	rec := runtime.Record{Stream: runtime.StreamID{Type: shop.OrderStreamType, ID: "order-1"}, Name: last.Name, Schema: last.Schema,
		Data: mustMarshal(t, struct{ Carrier string }{"UPS Ground"})}
	if err := h.Handle(ctx, rec); err != nil || !reflect.DeepEqual(e, shop.OrderShipped{Carrier: "UPS", Service: "Ground"}) {
		t.Fatalf("projection handler of OrderShipped: %+v %v", e, err)
	}

	// New events are version 2.
	if _, err := repo.Append(ctx, "order-2", runtime.NoStream, shop.OrderShipped{Carrier: "post", Service: "standard"}); err != nil {
		t.Fatal(err)
	}
	for env, err := range repo.Events(ctx, "order-2", 0) {
		if err != nil || env.Schema != 2 || shop.OrderShippedSchemaVersion != 2 {
			t.Fatalf("new event stored at schema %d (%v)", env.Schema, err)
		}
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Example_shippedV1 shows an order shipped by the previous release
// (shop.order.shipped@1, "DHL Express" in one field) read back by this one.
func Example_shippedV1() {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	repo := shop.NewOrderRepository(s)
	if err := shippedV1(ctx, s, repo, "order-1"); err != nil {
		fmt.Println(err)
		return
	}
	for env, err := range repo.Events(ctx, "order-1", 4) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("stored as %s@%d, read as %#v\n", env.Name, env.Schema, env.Event)
	}
	// Output:
	// stored as shop.order.shipped@1, read as shop.OrderShipped{Carrier:"DHL", Service:"Express"}
}
