// Package account is the bank example's domain: an Account aggregate with
// its events and commands, written as plain structs and small methods.
// cqrsgen generates the rest into cqrs_gen.go.
package account

//go:generate go tool cqrsgen

import (
	"errors"
	"fmt"
	"time"
)

// Business-rule errors returned by the Handle methods. Execute returns them
// as they are, so callers match them with errors.Is.
var (
	ErrAlreadyOpen       = errors.New("account: already open")
	ErrNotOpen           = errors.New("account: not open")
	ErrAccountClosed     = errors.New("account: closed")
	ErrInvalidAmount     = errors.New("account: amount must be positive")
	ErrInsufficientFunds = errors.New("account: insufficient funds")
	ErrNonZeroBalance    = errors.New("account: balance must be zero to close")
	ErrNoOwner           = errors.New("account: owner is required")
)

// Account is the state of one bank account, rebuilt from its events.
//
//cqrs:aggregate name=bank.account snapshot=100
type Account struct {
	Owner    string
	Balance  int64 // in cents
	Open     bool
	Closed   bool
	OpenedAt time.Time
	// Deposits counts deposits, to show state beyond the balance.
	Deposits int
}

// Opened records that an account was opened for its owner.
//
//cqrs:event Account name=bank.account.opened
type Opened struct {
	Owner string
	At    time.Time
}

// Deposited records money paid in.
//
//cqrs:event Account name=bank.account.deposited
type Deposited struct {
	Amount    int64
	Reference string
}

// Withdrawn records money paid out.
//
//cqrs:event Account name=bank.account.withdrawn
type Withdrawn struct {
	Amount    int64
	Reference string
}

// AccountClosed records that the account was closed.
//
//cqrs:event Account name=bank.account.closed
type AccountClosed struct {
	Reason string
}

// OpenAccount asks to open the account for Owner.
//
//cqrs:command Account
type OpenAccount struct {
	Owner string
}

// Deposit asks to pay Amount cents in.
//
//cqrs:command Account
type Deposit struct {
	Amount    int64
	Reference string
}

// Withdraw asks to pay Amount cents out; the balance may not go negative.
//
//cqrs:command Account
type Withdraw struct {
	Amount    int64
	Reference string
}

// CloseAccount asks to close the account; its balance must be zero.
//
//cqrs:command Account
type CloseAccount struct {
	Reason string
}

// ApplyOpened evolves the state by an Opened event.
func (a *Account) ApplyOpened(e Opened) {
	a.Owner, a.Open, a.OpenedAt = e.Owner, true, e.At
}

// ApplyDeposited evolves the state by a Deposited event.
func (a *Account) ApplyDeposited(e Deposited) {
	a.Balance += e.Amount
	a.Deposits++
}

// ApplyWithdrawn evolves the state by a Withdrawn event.
func (a *Account) ApplyWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

// ApplyAccountClosed evolves the state by an AccountClosed event.
func (a *Account) ApplyAccountClosed(AccountClosed) { a.Open, a.Closed = false, true }

// HandleOpenAccount decides an OpenAccount command.
func (a *Account) HandleOpenAccount(c OpenAccount) ([]AccountEvent, error) {
	switch {
	case a.Closed:
		return nil, ErrAccountClosed
	case a.Open:
		return nil, ErrAlreadyOpen
	case c.Owner == "":
		return nil, ErrNoOwner
	}
	return []AccountEvent{Opened{Owner: c.Owner, At: time.Now().UTC()}}, nil
}

// HandleDeposit decides a Deposit command.
func (a *Account) HandleDeposit(c Deposit) ([]AccountEvent, error) {
	if err := a.usable(c.Amount); err != nil {
		return nil, err
	}
	return []AccountEvent{Deposited{Amount: c.Amount, Reference: c.Reference}}, nil
}

// HandleWithdraw decides a Withdraw command.
func (a *Account) HandleWithdraw(c Withdraw) ([]AccountEvent, error) {
	if err := a.usable(c.Amount); err != nil {
		return nil, err
	}
	if c.Amount > a.Balance {
		return nil, fmt.Errorf("%w: balance %d, asked %d", ErrInsufficientFunds, a.Balance, c.Amount)
	}
	return []AccountEvent{Withdrawn{Amount: c.Amount, Reference: c.Reference}}, nil
}

// HandleCloseAccount decides a CloseAccount command.
func (a *Account) HandleCloseAccount(c CloseAccount) ([]AccountEvent, error) {
	if err := a.usable(1); err != nil {
		return nil, err
	}
	if a.Balance != 0 {
		return nil, fmt.Errorf("%w: balance %d", ErrNonZeroBalance, a.Balance)
	}
	return []AccountEvent{AccountClosed{Reason: c.Reason}}, nil
}

func (a *Account) usable(amount int64) error {
	switch {
	case a.Closed:
		return ErrAccountClosed
	case !a.Open:
		return ErrNotOpen
	case amount <= 0:
		return ErrInvalidAmount
	}
	return nil
}
