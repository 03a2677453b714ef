package shop_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	v1 "github.com/cqrsgen/cqrsgen/examples/shop/internal/v1"
	"github.com/cqrsgen/cqrsgen/examples/shop/shop"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func product(events ...shop.ProductEvent) *shop.Product {
	p := new(shop.Product)
	for _, e := range events {
		p.Apply(e)
	}
	return p
}

func order(events ...shop.OrderEvent) *shop.Order {
	o := new(shop.Order)
	for _, e := range events {
		o.Apply(e)
	}
	return o
}

// TestProductRules decides commands against states built from events:
// each either yields exactly the wanted events or the wanted error.
func TestProductRules(t *testing.T) {
	listed := []shop.ProductEvent{shop.ProductListed{Name: "Mug", Price: 12_50}, shop.StockReceived{Qty: 5}}
	reserved := append(listed[:2:2], shop.StockReserved{Qty: 3, OrderID: "o1"})
	for _, c := range []struct {
		name    string
		history []shop.ProductEvent
		cmd     shop.ProductCommand
		want    []shop.ProductEvent
		err     error
	}{
		{"list", nil, shop.ListProduct{Name: "Mug", Price: 1}, []shop.ProductEvent{shop.ProductListed{Name: "Mug", Price: 1}}, nil},
		{"list twice", listed, shop.ListProduct{Name: "Mug", Price: 1}, nil, shop.ErrProductListed},
		{"list without name", nil, shop.ListProduct{Price: 1}, nil, shop.ErrNoName},
		{"list free", nil, shop.ListProduct{Name: "Mug"}, nil, shop.ErrInvalidPrice},
		{"price unchanged", listed, shop.ChangePrice{Price: 12_50}, nil, nil},
		{"price changed", listed, shop.ChangePrice{Price: 9_99}, []shop.ProductEvent{shop.PriceChanged{Price: 9_99}}, nil},
		{"negative price", listed, shop.ChangePrice{Price: -1}, nil, shop.ErrInvalidPrice},
		{"receive unlisted", nil, shop.ReceiveStock{Qty: 1}, nil, shop.ErrNoProduct},
		{"receive zero", listed, shop.ReceiveStock{Qty: 0}, nil, shop.ErrInvalidQuantity},
		{"reserve all", listed, shop.ReserveStock{Qty: 5, OrderID: "o1"}, []shop.ProductEvent{shop.StockReserved{Qty: 5, OrderID: "o1"}}, nil},
		{"reserve beyond available", reserved, shop.ReserveStock{Qty: 3, OrderID: "o2"}, nil, shop.ErrOutOfStock},
		{"release", reserved, shop.ReleaseStock{Qty: 3, OrderID: "o1"}, []shop.ProductEvent{shop.StockReleased{Qty: 3, OrderID: "o1"}}, nil},
		{"release unreserved", reserved, shop.ReleaseStock{Qty: 4, OrderID: "o1"}, nil, shop.ErrNotReserved},
		{"dispatch unreserved", listed, shop.DispatchStock{Qty: 1, OrderID: "o1"}, nil, shop.ErrNotReserved},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := product(c.history...)
			before := *p
			got, err := p.Decide(c.cmd)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("events = %+v, want %+v", got, c.want)
			}
			if *p != before {
				t.Errorf("Decide changed the state: %+v, was %+v", *p, before)
			}
		})
	}
}

func TestOrderRules(t *testing.T) {
	draft := []shop.OrderEvent{shop.OrderCreated{Customer: "ada"}}
	withLine := append(draft[:1:1], shop.LineAdded{SKU: "mug", Qty: 2, UnitPrice: 10_00, DiscountPercent: 10})
	placed := append(withLine[:2:2], shop.OrderPlaced{Total: 18_00})
	paid := append(placed[:3:3], shop.OrderPaid{Amount: 18_00})
	shipped := append(paid[:4:4], shop.OrderShipped{Carrier: "post"})
	cancelled := append(placed[:3:3], shop.OrderCancelled{})
	for _, c := range []struct {
		name    string
		history []shop.OrderEvent
		cmd     shop.OrderCommand
		want    []shop.OrderEvent
		err     error
	}{
		{"create", nil, shop.CreateOrder{Customer: "ada"}, []shop.OrderEvent{shop.OrderCreated{Customer: "ada"}}, nil},
		{"create twice", draft, shop.CreateOrder{Customer: "ada"}, nil, shop.ErrOrderExists},
		{"create without customer", nil, shop.CreateOrder{}, nil, shop.ErrNoCustomer},
		{"add to missing order", nil, shop.AddLine{SKU: "mug", Qty: 1, UnitPrice: 1}, nil, shop.ErrNoOrder},
		{"add zero", draft, shop.AddLine{SKU: "mug", UnitPrice: 1}, nil, shop.ErrInvalidQuantity},
		{"add free", draft, shop.AddLine{SKU: "mug", Qty: 1}, nil, shop.ErrInvalidPrice},
		{"add over 100% off", draft, shop.AddLine{SKU: "mug", Qty: 1, UnitPrice: 1, DiscountPercent: 101}, nil, shop.ErrInvalidDiscount},
		{"add to placed", placed, shop.AddLine{SKU: "mug", Qty: 1, UnitPrice: 1}, nil, shop.ErrNotDraft},
		{"place empty", draft, shop.PlaceOrder{}, nil, shop.ErrEmptyOrder},
		{"place", withLine, shop.PlaceOrder{}, []shop.OrderEvent{shop.OrderPlaced{Total: 18_00}}, nil},
		{"pay draft", withLine, shop.PayOrder{Amount: 18_00}, nil, shop.ErrNotPlaced},
		{"pay wrong amount", placed, shop.PayOrder{Amount: 20_00}, nil, shop.ErrWrongAmount},
		{"pay", placed, shop.PayOrder{Amount: 18_00, PaymentRef: "r"}, []shop.OrderEvent{shop.OrderPaid{Amount: 18_00, PaymentRef: "r"}}, nil},
		{"pay twice", paid, shop.PayOrder{Amount: 18_00}, nil, shop.ErrNotPlaced},
		{"ship unpaid", placed, shop.ShipOrder{}, nil, shop.ErrNotPaid},
		{"ship cancelled", cancelled, shop.ShipOrder{}, nil, shop.ErrCancelled},
		{"cancel shipped", shipped, shop.CancelOrder{}, nil, shop.ErrShipped},
		{"cancel twice", cancelled, shop.CancelOrder{}, nil, shop.ErrCancelled},
		{"cancel paid", paid, shop.CancelOrder{Reason: "r"}, []shop.OrderEvent{shop.OrderCancelled{Reason: "r"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := order(c.history...).Decide(c.cmd)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("events = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestCustomerRules(t *testing.T) {
	for _, c := range []struct {
		name       string
		registered bool
		cmd        shop.CustomerCommand
		err        error
	}{
		{"register", false, shop.RegisterCustomer{Name: "Ada", Email: "ada@example.com"}, nil},
		{"register twice", true, shop.RegisterCustomer{Name: "Ada", Email: "ada@example.com"}, shop.ErrCustomerExists},
		{"no at", false, shop.RegisterCustomer{Email: "ada.example.com"}, shop.ErrInvalidEmail},
		{"empty local part", false, shop.RegisterCustomer{Email: "@example.com"}, shop.ErrInvalidEmail},
		{"two ats", false, shop.RegisterCustomer{Email: "a@b@c"}, shop.ErrInvalidEmail},
		{"change unregistered", false, shop.ChangeEmail{Email: "a@b"}, shop.ErrNotRegistered},
		{"change", true, shop.ChangeEmail{Email: "a@b"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cu := new(shop.Customer)
			if c.registered {
				cu.Apply(shop.CustomerRegistered{Name: "Ada", Email: "ada@example.com"})
			}
			events, err := cu.Decide(c.cmd)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if (err == nil) != (len(events) == 1) {
				t.Errorf("events = %+v with err %v", events, err)
			}
		})
	}
}

// TestLineTotal checks the discount arithmetic order totals rely on.
func TestLineTotal(t *testing.T) {
	for _, c := range []struct {
		line shop.Line
		want int64
	}{
		{shop.Line{Qty: 2, UnitPrice: 12_50}, 25_00},
		{shop.Line{Qty: 3, UnitPrice: 4_00, DiscountPercent: 25}, 9_00},
		{shop.Line{Qty: 1, UnitPrice: 99, DiscountPercent: 100}, 0},
	} {
		if got := c.line.Amount(); got != c.want {
			t.Errorf("%+v.Amount() = %d, want %d", c.line, got, c.want)
		}
	}
}

// TestOldLineAddedDecodes writes LineAdded events in the old shape (no
// DiscountPercent) and reads them with the current type: same wire name,
// same schema version, the new field zero; a new event keeps its value
// through the codec.
func TestOldLineAddedDecodes(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	if _, err := v1.NewOrderRepository(store).Append(ctx, "o1", runtime.NoStream,
		v1.OrderCreated{Customer: "ada"}, v1.LineAdded{SKU: "mug", Qty: 2, UnitPrice: 12_50}); err != nil {
		t.Fatal(err)
	}
	orders := shop.NewOrderRepository(store)
	if _, err := orders.Append(ctx, "o1", 2, shop.LineAdded{SKU: "tea", Qty: 3, UnitPrice: 4_00, DiscountPercent: 25}); err != nil {
		t.Fatal(err)
	}
	var got []shop.LineAdded
	for env, err := range orders.Events(ctx, "o1", 1) {
		if err != nil {
			t.Fatal(err)
		}
		if env.Name != shop.LineAddedEventName || env.Schema != shop.LineAddedSchemaVersion {
			t.Errorf("v%d stored as %s/%d", env.Version, env.Name, env.Schema)
		}
		got = append(got, env.Event.(shop.LineAdded))
	}
	want := []shop.LineAdded{
		{SKU: "mug", Qty: 2, UnitPrice: 12_50},
		{SKU: "tea", Qty: 3, UnitPrice: 4_00, DiscountPercent: 25},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %+v, want %+v", got, want)
	}
	o, v, err := orders.Load(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if v != 3 || o.Total != 34_00 || o.Customer != "ada" || o.Status != shop.StatusDraft {
		t.Errorf("Load = %+v at version %d", *o, v)
	}
}

// TestWireNamesMatchV1 pins that the old package writes exactly the names
// the current one reads.
func TestWireNamesMatchV1(t *testing.T) {
	pairs := [][2]string{
		{v1.OrderStreamType, shop.OrderStreamType},
		{v1.OrderCreatedEventName, shop.OrderCreatedEventName},
		{v1.LineAddedEventName, shop.LineAddedEventName},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("v1 writes %q, current reads %q", p[0], p[1])
		}
	}
	if v1.LineAddedSchemaVersion != shop.LineAddedSchemaVersion {
		t.Errorf("schema versions differ: v1 %d, current %d", v1.LineAddedSchemaVersion, shop.LineAddedSchemaVersion)
	}
}
