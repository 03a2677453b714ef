package account

//cqrs:aggregate name=bank.account
type Account struct{ Balance int64 }

//cqrs:event Account name=bank.account.deposited
type Deposited struct {
	Amount    string
	Reference string
}

func (a *Account) ApplyDeposited(e Deposited) {}
