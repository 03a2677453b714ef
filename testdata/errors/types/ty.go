package types

//cqrs:aggregate
type account struct{}

//cqrs:aggregate
type Counter int

//cqrs:aggregate
type Alias = struct{}

//cqrs:aggregate
type Box[T any] struct{ V T }

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type deposited struct{}

//cqrs:event Account
type Names []string

//cqrs:command Account
type Ping func()

//cqrs:event Account
type Opened struct{}

func (a *Account) ApplyOpened(Opened) {}
