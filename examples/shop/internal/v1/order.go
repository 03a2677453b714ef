// Package v1 is the shop's Order events as an earlier release wrote them,
// kept only so that examples/shop can write real old data: LineAdded here
// has no DiscountPercent field, the field that the current
// examples/shop/shop.LineAdded gained later.
//
// The wire names are the same as the current package's (shop.order,
// shop.order.created, shop.order.line_added) and so is the schema version
// (1): what is stored is exactly what the old release stored, and the
// current repository reads it back.
package v1

//go:generate go tool cqrsgen

// Order is the old release's order state, reduced to what its events need.
//
//cqrs:aggregate name=shop.order
type Order struct {
	Customer string
	Lines    int
}

// OrderCreated is the old shape of shop.OrderCreated (unchanged since).
//
//cqrs:event Order name=shop.order.created
type OrderCreated struct {
	Customer string
}

// LineAdded is the old shape of shop.LineAdded: no DiscountPercent.
//
//cqrs:event Order name=shop.order.line_added
type LineAdded struct {
	SKU       string
	Qty       int
	UnitPrice int64
}

// ApplyOrderCreated evolves the state by an OrderCreated event.
func (o *Order) ApplyOrderCreated(e OrderCreated) { o.Customer = e.Customer }

// ApplyLineAdded evolves the state by a LineAdded event.
func (o *Order) ApplyLineAdded(LineAdded) { o.Lines++ }
