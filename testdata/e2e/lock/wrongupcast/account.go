package account

//cqrs:aggregate name=bank.account
type Account struct{ Balance int64 }

//cqrs:event Account name=bank.account.deposited version=2
type Deposited struct {
	Cents     int64
	Reference string
}

func (a *Account) ApplyDeposited(e Deposited) {}

type DepositedV1 struct {
	Amount    int64
	Reference string
}

//cqrs:upcast
func depositedV1ToV2(old DepositedV1) Deposited {
	return Deposited{Cents: old.Amount, Reference: old.Reference}
}
