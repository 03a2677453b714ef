package multi

// Order is a customer order.
//
//cqrs:aggregate name=shop.order snapshot=50
type Order struct {
	Lines  []Line
	Placed bool
	Note   *string
}

// Line is one order line.
type Line struct {
	SKU string `msgpack:"sku"`
	Qty uint16
}

// Place places the order.
//
//cqrs:command Order
type Place struct{ Lines []Line }

// HandlePlace decides Place.
func (o *Order) HandlePlace(c Place) ([]OrderEvent, error) {
	if o.Placed {
		return nil, nil
	}
	return []OrderEvent{Placed{Lines: c.Lines}}, nil
}
