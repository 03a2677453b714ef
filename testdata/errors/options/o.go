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
