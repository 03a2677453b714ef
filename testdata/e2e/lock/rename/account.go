package account

//cqrs:aggregate name=bank.account
type Account struct{ Balance int64 }

//cqrs:event Account name=bank.account.deposited version=2
type Deposited struct {
	Cents     int64
	Reference string
}

func (a *Account) ApplyDeposited(e Deposited) {}

type CreditedV1 struct{ Cents int64 }

//cqrs:upcast from=bank.account.credited@1
func creditedToDeposited(old CreditedV1) Deposited { return Deposited{Cents: old.Cents} }
