package shop

import (
	"errors"
	"fmt"
	"strings"
)

// Order rule errors.
var (
	ErrOrderExists     = errors.New("order: already created")
	ErrNoOrder         = errors.New("order: not created")
	ErrNoCustomer      = errors.New("order: customer is required")
	ErrNotDraft        = errors.New("order: no longer a draft")
	ErrEmptyOrder      = errors.New("order: has no lines")
	ErrInvalidDiscount = errors.New("order: discount must be 0 to 100 percent")
	ErrNotPlaced       = errors.New("order: not placed")
	ErrWrongAmount     = errors.New("order: payment does not match the total")
	ErrNotPaid         = errors.New("order: not paid")
	ErrShipped         = errors.New("order: already shipped")
	ErrCancelled       = errors.New("order: cancelled")
)

// OrderStatus is where an order is in its life.
type OrderStatus string

// The statuses of an order, in the order they are reached. An order is
// cancelled from any status before shipped.
const (
	StatusNone      OrderStatus = ""
	StatusDraft     OrderStatus = "draft"
	StatusPlaced    OrderStatus = "placed"
	StatusPaid      OrderStatus = "paid"
	StatusShipped   OrderStatus = "shipped"
	StatusCancelled OrderStatus = "cancelled"
)

// Order is a customer's order: lines added while it is a draft, then
// placed, paid and shipped, or cancelled.
//
//cqrs:aggregate name=shop.order
type Order struct {
	Customer string
	Lines    []Line
	Status   OrderStatus
	// Total is the sum of the lines, in cents, after discounts.
	Total   int64
	Paid    int64
	Carrier string
}

// Line is one line of an order, priced when it was added.
type Line struct {
	SKU             string
	Qty             int
	UnitPrice       int64
	DiscountPercent int
}

// Amount is the line's price after its discount, in cents.
func (l Line) Amount() int64 {
	return int64(l.Qty) * l.UnitPrice * int64(100-l.DiscountPercent) / 100
}

// OrderCreated records that a customer started an order.
//
//cqrs:event Order name=shop.order.created
type OrderCreated struct {
	Customer string
}

// LineAdded records a line added to a draft order.
//
// DiscountPercent was added to this event after orders had been stored
// without it. No schema version bump and no upcaster are needed: the codec
// leaves a field that an old event lacks at its zero value, and 0 percent
// is exactly what old lines meant. (examples/shop/internal/v1 holds the
// old shape; examples/shop/main.go writes with it and reads back with this
// one.)
//
//cqrs:event Order name=shop.order.line_added
type LineAdded struct {
	SKU             string
	Qty             int
	UnitPrice       int64
	DiscountPercent int
}

// OrderPlaced records that the customer confirmed the order at Total.
//
//cqrs:event Order name=shop.order.placed
type OrderPlaced struct {
	Total int64
}

// OrderPaid records a payment of the whole total.
//
//cqrs:event Order name=shop.order.paid
type OrderPaid struct {
	Amount     int64
	PaymentRef string
}

// OrderShipped records that a paid order left with a carrier.
//
// Version 2 split the service level out of Carrier. Version 1 stored both
// in Carrier ("DHL Express"); OrderShippedV1 is that stored shape, and
// orderShippedV1ToV2 lifts old events when they are read, so Apply,
// projections and Events only ever see this type.
// (examples/shop/shop/upcast_test.go stores version 1 bytes and reads them
// back through the repository.)
//
//cqrs:event Order name=shop.order.shipped version=2
type OrderShipped struct {
	Carrier string
	Service string
}

// OrderShippedV1 is shop.order.shipped@1 as it was stored: the carrier
// and its service level in one string.
type OrderShippedV1 struct {
	Carrier string
}

// orderShippedV1ToV2 splits "DHL Express" into carrier and service.
//
//cqrs:upcast
func orderShippedV1ToV2(old OrderShippedV1) OrderShipped {
	carrier, service, _ := strings.Cut(old.Carrier, " ")
	return OrderShipped{Carrier: carrier, Service: service}
}

// OrderCancelled records that an order was cancelled before shipping.
//
//cqrs:event Order name=shop.order.cancelled
type OrderCancelled struct {
	Reason string
}

// CreateOrder asks to start an order for Customer (a customer id).
//
//cqrs:command Order
type CreateOrder struct {
	Customer string
}

// AddLine asks to add a line to a draft order. The application prices it
// from the product (UnitPrice).
//
//cqrs:command Order
type AddLine struct {
	SKU             string
	Qty             int
	UnitPrice       int64
	DiscountPercent int
}

// PlaceOrder asks to confirm a draft order that has lines.
//
//cqrs:command Order
type PlaceOrder struct{}

// PayOrder asks to record a payment; Amount must be the order's total.
//
//cqrs:command Order
type PayOrder struct {
	Amount     int64
	PaymentRef string
}

// ShipOrder asks to ship a paid order.
//
//cqrs:command Order
type ShipOrder struct {
	Carrier string
}

// CancelOrder asks to cancel an order that has not shipped.
//
//cqrs:command Order
type CancelOrder struct {
	Reason string
}

// ApplyOrderCreated evolves the state by an OrderCreated event.
func (o *Order) ApplyOrderCreated(e OrderCreated) {
	o.Customer, o.Status = e.Customer, StatusDraft
}

// ApplyLineAdded evolves the state by a LineAdded event.
func (o *Order) ApplyLineAdded(e LineAdded) {
	l := Line{SKU: e.SKU, Qty: e.Qty, UnitPrice: e.UnitPrice, DiscountPercent: e.DiscountPercent}
	o.Lines = append(o.Lines, l)
	o.Total += l.Amount()
}

// ApplyOrderPlaced evolves the state by an OrderPlaced event.
func (o *Order) ApplyOrderPlaced(OrderPlaced) { o.Status = StatusPlaced }

// ApplyOrderPaid evolves the state by an OrderPaid event.
func (o *Order) ApplyOrderPaid(e OrderPaid) {
	o.Paid += e.Amount
	o.Status = StatusPaid
}

// ApplyOrderShipped evolves the state by an OrderShipped event.
func (o *Order) ApplyOrderShipped(e OrderShipped) {
	o.Carrier, o.Status = e.Carrier, StatusShipped
}

// ApplyOrderCancelled evolves the state by an OrderCancelled event.
func (o *Order) ApplyOrderCancelled(OrderCancelled) { o.Status = StatusCancelled }

// HandleCreateOrder decides a CreateOrder command.
func (o *Order) HandleCreateOrder(c CreateOrder) ([]OrderEvent, error) {
	switch {
	case o.Status != StatusNone:
		return nil, ErrOrderExists
	case c.Customer == "":
		return nil, ErrNoCustomer
	}
	return []OrderEvent{OrderCreated{Customer: c.Customer}}, nil
}

// HandleAddLine decides an AddLine command.
func (o *Order) HandleAddLine(c AddLine) ([]OrderEvent, error) {
	if err := o.is(StatusDraft, ErrNotDraft); err != nil {
		return nil, err
	}
	switch {
	case c.Qty <= 0:
		return nil, fmt.Errorf("%w: %d", ErrInvalidQuantity, c.Qty)
	case c.UnitPrice <= 0:
		return nil, fmt.Errorf("%w: %d", ErrInvalidPrice, c.UnitPrice)
	case c.DiscountPercent < 0 || c.DiscountPercent > 100:
		return nil, fmt.Errorf("%w: %d", ErrInvalidDiscount, c.DiscountPercent)
	}
	return []OrderEvent{LineAdded{SKU: c.SKU, Qty: c.Qty, UnitPrice: c.UnitPrice, DiscountPercent: c.DiscountPercent}}, nil
}

// HandlePlaceOrder decides a PlaceOrder command.
func (o *Order) HandlePlaceOrder(PlaceOrder) ([]OrderEvent, error) {
	if err := o.is(StatusDraft, ErrNotDraft); err != nil {
		return nil, err
	}
	if len(o.Lines) == 0 {
		return nil, ErrEmptyOrder
	}
	return []OrderEvent{OrderPlaced{Total: o.Total}}, nil
}

// HandlePayOrder decides a PayOrder command.
func (o *Order) HandlePayOrder(c PayOrder) ([]OrderEvent, error) {
	if err := o.is(StatusPlaced, ErrNotPlaced); err != nil {
		return nil, err
	}
	if c.Amount != o.Total {
		return nil, fmt.Errorf("%w: total %d cents, paid %d", ErrWrongAmount, o.Total, c.Amount)
	}
	return []OrderEvent{OrderPaid{Amount: c.Amount, PaymentRef: c.PaymentRef}}, nil
}

// HandleShipOrder decides a ShipOrder command.
func (o *Order) HandleShipOrder(c ShipOrder) ([]OrderEvent, error) {
	if err := o.is(StatusPaid, ErrNotPaid); err != nil {
		return nil, err
	}
	return []OrderEvent{OrderShipped{Carrier: c.Carrier}}, nil
}

// HandleCancelOrder decides a CancelOrder command.
func (o *Order) HandleCancelOrder(c CancelOrder) ([]OrderEvent, error) {
	switch o.Status {
	case StatusNone:
		return nil, ErrNoOrder
	case StatusShipped:
		return nil, ErrShipped
	case StatusCancelled:
		return nil, ErrCancelled
	}
	return []OrderEvent{OrderCancelled{Reason: c.Reason}}, nil
}

// is returns nil when the order is in status want, else an error: notWant
// wrapped with the actual status, or the error of a missing, cancelled or
// shipped order.
func (o *Order) is(want OrderStatus, notWant error) error {
	switch o.Status {
	case want:
		return nil
	case StatusNone:
		return ErrNoOrder
	case StatusCancelled:
		return ErrCancelled
	case StatusShipped:
		return ErrShipped
	}
	return fmt.Errorf("%w (it is %s)", notWant, o.Status)
}
