// Package projection is a golden case for //cqrs:projection: two
// aggregates, an at-least-once projection over both (no Reset, so no
// rebuilds) and an exactly-once projection with Reset and Position.
package projection

//cqrs:aggregate name=bank.account
type Account struct{ Balance int64 }

//cqrs:event Account name=account.opened
type Opened struct{ Owner string }

//cqrs:event Account name=account.deposited
type Deposited struct{ Amount int64 }

func (a *Account) ApplyOpened(Opened)         {}
func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }

//cqrs:aggregate
type Audit struct{}

// Opened events of Audit are named like Account's, to show that dispatch
// looks at the stream type too.
//
//cqrs:event Audit name=account.opened
type Noted struct{ Text string }

func (a *Audit) ApplyNoted(Noted) {}
