package fields

//cqrs:aggregate
type Account struct {
	Balance int64
	Updates chan int
}

//cqrs:event Account
type Deposited struct {
	Amount  int64
	Handler func()
	Payload any
	ByFloat map[float64]string
}

func (a *Account) ApplyDeposited(Deposited) {}
