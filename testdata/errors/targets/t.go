package targets

//cqrs:aggregate
type Account struct{ Balance int64 }

//cqrs:event Account
type Opened struct{}

func (a *Account) ApplyOpened(Opened) {}

// Acount is a typo.
//
//cqrs:event Acount
type Deposited struct{ Amount int64 }

// Ledger exists but is no aggregate.
type Ledger struct{}

//cqrs:command Ledger
type Post struct{}
