// Package bank, version 1 of the schema.
package bank

//go:generate go tool cqrsgen

//cqrs:aggregate name=bank.account snapshot=2
type Account struct {
	Balance int64
	Notes   int
}

//cqrs:event Account name=bank.account.opened
type Opened struct{ Owner string }

//cqrs:event Account name=bank.account.deposited
type Deposited struct{ Amount int64 }

//cqrs:event Account name=bank.account.noted
type Noted struct{ Note string }

func (a *Account) ApplyOpened(Opened)         {}
func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ApplyNoted(Noted)           { a.Notes++ }
