// Package shop is the shop example's domain: three aggregates in one
// package — [Product] (price and stock), [Order] (lines, then placed, paid,
// shipped or cancelled) and [Customer] — written as plain structs and small
// methods, each aggregate in its own file. cqrsgen generates the rest into
// cqrs_gen.go: one sealed event and command interface and one typed
// repository per aggregate.
//
// Rules that span aggregates (an order's customer must exist, its lines
// reserve product stock) are enforced by the application that sends the
// commands (see examples/shop/main.go); each aggregate guards only its own
// state.
package shop

//go:generate go tool cqrsgen

import "errors"

// Business-rule errors shared by the aggregates. Handle methods wrap them
// with detail; Execute returns them as they are, so callers match them with
// errors.Is.
var (
	ErrInvalidPrice    = errors.New("shop: price must be positive")
	ErrInvalidQuantity = errors.New("shop: quantity must be positive")
)
