package imports

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Deposited struct{}

func (a *Account) ApplyDeposited(Deposited) {}

// runtime and context are packages the generated file imports.
var runtime = "go1.24"

type context struct{}
