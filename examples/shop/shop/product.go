package shop

import (
	"errors"
	"fmt"
)

// Product rule errors.
var (
	ErrProductListed = errors.New("product: already listed")
	ErrNoProduct     = errors.New("product: not listed")
	ErrNoName        = errors.New("product: name is required")
	ErrOutOfStock    = errors.New("product: not enough stock")
	ErrNotReserved   = errors.New("product: not that much stock reserved")
)

// Product is a product on sale: its price and its stock. Every stock
// movement is an event, so a popular product has a long stream; a snapshot
// every 25 events keeps loading it cheap.
//
//cqrs:aggregate name=shop.product snapshot=25
type Product struct {
	Name   string
	Price  int64 // in cents
	Listed bool
	// OnHand is the stock in the warehouse; Reserved is the part of it
	// promised to orders that have not shipped yet.
	OnHand   int
	Reserved int
	// Movements counts stock events, to show state beyond the figures.
	Movements int
}

// Available is the stock that can still be reserved.
func (p *Product) Available() int { return p.OnHand - p.Reserved }

// ProductListed records that a product was put on sale.
//
//cqrs:event Product name=shop.product.listed
type ProductListed struct {
	Name  string
	Price int64
}

// PriceChanged records a new price. Orders keep the price their lines were
// added at.
//
//cqrs:event Product name=shop.product.price_changed
type PriceChanged struct {
	Price int64
}

// StockReceived records goods arriving at the warehouse.
//
//cqrs:event Product name=shop.product.stock_received
type StockReceived struct {
	Qty int
}

// StockReserved records stock promised to an order.
//
//cqrs:event Product name=shop.product.stock_reserved
type StockReserved struct {
	Qty     int
	OrderID string
}

// StockReleased records a reservation given back (an order was cancelled).
//
//cqrs:event Product name=shop.product.stock_released
type StockReleased struct {
	Qty     int
	OrderID string
}

// StockDispatched records reserved stock leaving the warehouse with an
// order.
//
//cqrs:event Product name=shop.product.stock_dispatched
type StockDispatched struct {
	Qty     int
	OrderID string
}

// ListProduct asks to put a product on sale.
//
//cqrs:command Product
type ListProduct struct {
	Name  string
	Price int64
}

// ChangePrice asks to change a listed product's price.
//
//cqrs:command Product
type ChangePrice struct {
	Price int64
}

// ReceiveStock asks to add goods to the stock.
//
//cqrs:command Product
type ReceiveStock struct {
	Qty int
}

// ReserveStock asks to promise Qty units to an order; there must be that
// many available.
//
//cqrs:command Product
type ReserveStock struct {
	Qty     int
	OrderID string
}

// ReleaseStock asks to give back a reservation.
//
//cqrs:command Product
type ReleaseStock struct {
	Qty     int
	OrderID string
}

// DispatchStock asks to ship reserved units.
//
//cqrs:command Product
type DispatchStock struct {
	Qty     int
	OrderID string
}

// ApplyProductListed evolves the state by a ProductListed event.
func (p *Product) ApplyProductListed(e ProductListed) {
	p.Name, p.Price, p.Listed = e.Name, e.Price, true
}

// ApplyPriceChanged evolves the state by a PriceChanged event.
func (p *Product) ApplyPriceChanged(e PriceChanged) { p.Price = e.Price }

// ApplyStockReceived evolves the state by a StockReceived event.
func (p *Product) ApplyStockReceived(e StockReceived) {
	p.OnHand += e.Qty
	p.Movements++
}

// ApplyStockReserved evolves the state by a StockReserved event.
func (p *Product) ApplyStockReserved(e StockReserved) {
	p.Reserved += e.Qty
	p.Movements++
}

// ApplyStockReleased evolves the state by a StockReleased event.
func (p *Product) ApplyStockReleased(e StockReleased) {
	p.Reserved -= e.Qty
	p.Movements++
}

// ApplyStockDispatched evolves the state by a StockDispatched event.
func (p *Product) ApplyStockDispatched(e StockDispatched) {
	p.Reserved -= e.Qty
	p.OnHand -= e.Qty
	p.Movements++
}

// HandleListProduct decides a ListProduct command.
func (p *Product) HandleListProduct(c ListProduct) ([]ProductEvent, error) {
	switch {
	case p.Listed:
		return nil, ErrProductListed
	case c.Name == "":
		return nil, ErrNoName
	case c.Price <= 0:
		return nil, fmt.Errorf("%w: %d", ErrInvalidPrice, c.Price)
	}
	return []ProductEvent{ProductListed{Name: c.Name, Price: c.Price}}, nil
}

// HandleChangePrice decides a ChangePrice command.
func (p *Product) HandleChangePrice(c ChangePrice) ([]ProductEvent, error) {
	switch {
	case !p.Listed:
		return nil, ErrNoProduct
	case c.Price <= 0:
		return nil, fmt.Errorf("%w: %d", ErrInvalidPrice, c.Price)
	case c.Price == p.Price:
		return nil, nil // nothing changes: no event
	}
	return []ProductEvent{PriceChanged{Price: c.Price}}, nil
}

// HandleReceiveStock decides a ReceiveStock command.
func (p *Product) HandleReceiveStock(c ReceiveStock) ([]ProductEvent, error) {
	if err := p.movable(c.Qty); err != nil {
		return nil, err
	}
	return []ProductEvent{StockReceived{Qty: c.Qty}}, nil
}

// HandleReserveStock decides a ReserveStock command.
func (p *Product) HandleReserveStock(c ReserveStock) ([]ProductEvent, error) {
	if err := p.movable(c.Qty); err != nil {
		return nil, err
	}
	if c.Qty > p.Available() {
		return nil, fmt.Errorf("%w: %d available, %d asked", ErrOutOfStock, p.Available(), c.Qty)
	}
	return []ProductEvent{StockReserved{Qty: c.Qty, OrderID: c.OrderID}}, nil
}

// HandleReleaseStock decides a ReleaseStock command.
func (p *Product) HandleReleaseStock(c ReleaseStock) ([]ProductEvent, error) {
	if err := p.movable(c.Qty); err != nil {
		return nil, err
	}
	if c.Qty > p.Reserved {
		return nil, fmt.Errorf("%w: %d reserved, %d released", ErrNotReserved, p.Reserved, c.Qty)
	}
	return []ProductEvent{StockReleased{Qty: c.Qty, OrderID: c.OrderID}}, nil
}

// HandleDispatchStock decides a DispatchStock command.
func (p *Product) HandleDispatchStock(c DispatchStock) ([]ProductEvent, error) {
	if err := p.movable(c.Qty); err != nil {
		return nil, err
	}
	if c.Qty > p.Reserved {
		return nil, fmt.Errorf("%w: %d reserved, %d dispatched", ErrNotReserved, p.Reserved, c.Qty)
	}
	return []ProductEvent{StockDispatched{Qty: c.Qty, OrderID: c.OrderID}}, nil
}

func (p *Product) movable(qty int) error {
	switch {
	case !p.Listed:
		return ErrNoProduct
	case qty <= 0:
		return fmt.Errorf("%w: %d", ErrInvalidQuantity, qty)
	}
	return nil
}
