package fields

import "strings"

//cqrs:aggregate
type Account struct {
	Balance int64
	Updates chan int
}

//cqrs:event Account
type Deposited struct {
	Amount  int64
	Handler func()
	Payload any
	ByFloat map[float64]string
}

func (a *Account) ApplyDeposited(Deposited) {}

// Base is embedded below: by value its fields would be promoted.
type Base struct{ ID string }

//cqrs:event Account
type Noted struct {
	*Base
	Text strings.Builder // unexported fields, no text or binary marshaler
}

func (a *Account) ApplyNoted(Noted) {}
