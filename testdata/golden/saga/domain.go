package saga

import "errors"

// ErrClosed is a business-rule error.
var ErrClosed = errors.New("closed")

//cqrs:aggregate name=wallet
type Wallet struct {
	Balance int64
	Closed  bool
}

//cqrs:event Wallet name=wallet.debited
type Debited struct {
	Amount int64
	Ref    string
}

//cqrs:event Wallet name=wallet.credited
type Credited struct {
	Amount int64
	Ref    string
}

//cqrs:command Wallet
type Debit struct {
	Amount int64
	Ref    string
}

//cqrs:command Wallet
type Credit struct {
	Amount int64
	Ref    string
}

func (w *Wallet) ApplyDebited(e Debited)   { w.Balance -= e.Amount }
func (w *Wallet) ApplyCredited(e Credited) { w.Balance += e.Amount }

func (w *Wallet) HandleDebit(c Debit) ([]WalletEvent, error) {
	if w.Closed {
		return nil, ErrClosed
	}
	return []WalletEvent{Debited(c)}, nil
}

func (w *Wallet) HandleCredit(c Credit) ([]WalletEvent, error) {
	if w.Closed {
		return nil, ErrClosed
	}
	return []WalletEvent{Credited(c)}, nil
}

//cqrs:aggregate name=order
type Order struct{ Placed bool }

//cqrs:event Order name=order.placed
type Placed struct {
	From, To string
	Amount   int64
}

func (o *Order) ApplyPlaced(Placed) { o.Placed = true }
