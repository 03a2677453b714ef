// Package sales is the shop example's read side: a Customers projection
// that joins events of two aggregates, Customer and Order, into one row
// per customer (name, orders, money paid, orders shipped and cancelled),
// through the code cqrsgen generates into cqrs_gen.go.
//
// Like the bank's read model it lives in memory and keeps its position
// under the same lock as its rows (exactly-once delivery), so a process
// starts empty at position 0 and replays the log.
package sales

//go:generate go tool cqrsgen

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/cqrsgen/cqrsgen/examples/shop/shop"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// Customers is the sales-by-customer read model. Its zero value is empty
// and ready to use; it is safe for concurrent use.
//
//cqrs:projection name=shop.sales-by-customer
type Customers struct {
	mu       sync.Mutex
	rows     map[string]*Customer // by customer id
	orders   map[string]string    // order id → customer id
	position uint64
}

// Customer is one row of the read model.
type Customer struct {
	ID, Name string
	// Orders counts the orders created for the customer; Shipped and
	// Cancelled those that were shipped or cancelled.
	Orders, Shipped, Cancelled int
	// Paid is the money paid for the customer's orders, in cents.
	Paid int64
}

// Rows returns the customers sorted by id.
func (c *Customers) Rows() []Customer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Customer, 0, len(c.rows))
	for _, r := range c.rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Customer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// commit applies change under the lock and moves the position with it;
// an already applied position is ignored.
func (c *Customers) commit(position uint64, change func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if position <= c.position {
		return nil
	}
	if c.rows == nil {
		c.rows, c.orders = map[string]*Customer{}, map[string]string{}
	}
	change()
	c.position = position
	return nil
}

func (c *Customers) row(id string) *Customer {
	r := c.rows[id]
	if r == nil {
		r = &Customer{ID: id}
		c.rows[id] = r
	}
	return r
}

// byOrder returns the row of the customer of an order (nil if unknown).
func (c *Customers) byOrder(order string) *Customer {
	if id, ok := c.orders[order]; ok {
		return c.row(id)
	}
	return nil
}

// OnCustomerRegistered names the customer (a Customer event).
func (c *Customers) OnCustomerRegistered(_ context.Context, e runtime.Envelope[shop.CustomerRegistered]) error {
	return c.commit(e.Position, func() { c.row(e.ID).Name = e.Event.Name })
}

// OnOrderCreated links the order to its customer (an Order event).
func (c *Customers) OnOrderCreated(_ context.Context, e runtime.Envelope[shop.OrderCreated]) error {
	return c.commit(e.Position, func() {
		c.orders[e.ID] = e.Event.Customer
		c.row(e.Event.Customer).Orders++
	})
}

// OnOrderPaid adds the payment to the order's customer.
func (c *Customers) OnOrderPaid(_ context.Context, e runtime.Envelope[shop.OrderPaid]) error {
	return c.commit(e.Position, func() {
		if r := c.byOrder(e.ID); r != nil {
			r.Paid += e.Event.Amount
		}
	})
}

// OnOrderShipped counts a shipped order.
func (c *Customers) OnOrderShipped(_ context.Context, e runtime.Envelope[shop.OrderShipped]) error {
	return c.commit(e.Position, func() {
		if r := c.byOrder(e.ID); r != nil {
			r.Shipped++
		}
	})
}

// OnOrderCancelled counts a cancelled order.
func (c *Customers) OnOrderCancelled(_ context.Context, e runtime.Envelope[shop.OrderCancelled]) error {
	return c.commit(e.Position, func() {
		if r := c.byOrder(e.ID); r != nil {
			r.Cancelled++
		}
	})
}

// Reset empties the model and its position together.
func (c *Customers) Reset(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows, c.orders, c.position = nil, nil, 0
	return nil
}

// Position returns the last position applied.
func (c *Customers) Position(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.position, nil
}
