package wirenames

//cqrs:aggregate name=acct
type Account struct{}

//cqrs:aggregate name=acct
type Ledger struct{}

//cqrs:event Account name=deposited
type Deposited struct{}

//cqrs:event Account name=deposited version=2
type DepositedV2 struct{}

//cqrs:event Ledger
type Posted struct{}

func (a *Account) ApplyDeposited(Deposited)     {}
func (a *Account) ApplyDepositedV2(DepositedV2) {}
func (l *Ledger) ApplyPosted(Posted)            {}
