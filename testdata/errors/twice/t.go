package twice

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
//cqrs:command Account
type Deposited struct{}

//cqrs:event Account
//cqrs:event Account name=again
type Opened struct{}

func (a *Account) ApplyDeposited(Deposited) {}
func (a *Account) ApplyOpened(Opened)       {}
