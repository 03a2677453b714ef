package directives

//cqrs:aggregate
type Account struct{ Balance int64 }

//cqrs:event Account
type Deposited struct{ Amount int64 }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }

//cqrs:foo
type Unknown struct{}

//cqrs:projection name=balances
type Balances struct{}

//cqrs:saga
type Transfer struct{}

//cqrs:upcast
func upcastDeposited(old Deposited) Deposited { return old }

//cqrs:event Account
func notAType() {}

//cqrs:aggregate
var notATypeEither = 1

type (
	//cqrs:event Account
	Orphaned struct{}
)

//cqrs:command Account
type (
	// Grouped types take their directives inside the group.
	Grouped struct{}
)

// cqrs:aggregate with a space is an ordinary comment, not a directive.
type Plain struct{}
