package foreignoutput

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Deposited struct{}

func (a *Account) ApplyDeposited(Deposited) {}
