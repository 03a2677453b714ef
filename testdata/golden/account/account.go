// Package account is a golden case: an aggregate with events and commands,
// options on every directive, a grouped declaration and a nested struct.
package account

import (
	"errors"
	"time"
)

// Account is a bank account.
//
//cqrs:aggregate name=bank.account snapshot=3
type Account struct {
	Owner   string
	Balance int64
	Open    bool
	History []Entry
}

// Entry is one line of an account's history (a nested struct).
type Entry struct {
	At     time.Time
	Amount int64
}

// ErrClosed rejects commands on a closed account.
var ErrClosed = errors.New("account closed")

type (
	// Opened starts an account.
	//cqrs:event Account name=account.opened
	Opened struct{ Owner string }

	// Deposited adds money.
	//cqrs:event Account version=2
	Deposited struct {
		Amount int64
		At     time.Time
	}
)

// DepositedV1 is how Deposited was stored at version 1, before it
// carried a time; the upcaster lifts it to version 2.
type DepositedV1 struct{ Amount int64 }

//cqrs:upcast
func depositedV1ToV2(old DepositedV1) Deposited { return Deposited{Amount: old.Amount} }

// Withdrawn takes money out.
//
//cqrs:event Account
type Withdrawn struct{ Amount int64 }

// Open opens the account.
//
//cqrs:command Account
type Open struct{ Owner string }

// Deposit adds money to an open account.
//
//cqrs:command Account
type Deposit struct{ Amount int64 }

// ApplyOpened applies Opened.
func (a *Account) ApplyOpened(e Opened) { a.Owner, a.Open = e.Owner, true }

// ApplyDeposited applies Deposited.
func (a *Account) ApplyDeposited(e Deposited) {
	a.Balance += e.Amount
	a.History = append(a.History, Entry{At: e.At, Amount: e.Amount})
}

// ApplyWithdrawn applies Withdrawn.
func (a *Account) ApplyWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

// HandleOpen decides Open.
func (a Account) HandleOpen(c Open) ([]AccountEvent, error) {
	if a.Open {
		return nil, nil
	}
	return []AccountEvent{Opened{Owner: c.Owner}}, nil
}

// HandleDeposit decides Deposit.
func (a *Account) HandleDeposit(c Deposit) (events []AccountEvent, err error) {
	if !a.Open {
		return nil, ErrClosed
	}
	return []AccountEvent{Deposited{Amount: c.Amount}}, nil
}
