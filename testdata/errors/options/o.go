package options

//cqrs:aggregate snapshot=-1 name= colour=red
type Account struct{ Balance int64 }

//cqrs:aggregate snapshot=ten Ledger
type Ledger struct{}

//cqrs:event Account version=0
type Deposited struct{ Amount int64 }

//cqrs:event Account version=1 version=2 snapshot=3
type Withdrawn struct{ Amount int64 }

//cqrs:event name=x
type Nameless struct{}

//cqrs:command Account name=deposit
type Deposit struct{}

//cqrs:event Account version=99999999999
type Huge struct{}

// The methods are there, so only the options above are wrong.

func (a *Account) ApplyDeposited(Deposited) {}
func (a *Account) ApplyWithdrawn(Withdrawn) {}
func (a *Account) ApplyHuge(Huge)           {}
func (a *Account) HandleDeposit(Deposit) ([]AccountEvent, error) {
	return nil, nil
}

//cqrs:event Ledger
type Posted struct{}

func (l *Ledger) ApplyPosted(Posted) {}

//cqrs:aggregate snapshots=50
type Book struct{}

//cqrs:event Book versoin=2
type Added struct{}

func (b *Book) ApplyAdded(Added) {}
