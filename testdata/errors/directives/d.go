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

// Spaced was meant to be an aggregate: "// cqrs:" with a space is prose
// to Go, which cqrsgen points out (once: Spaced is read as an aggregate).
//
// cqrs:aggregate
type Spaced struct{}

//cqrs:event Spaced
type Happened struct{}

func (s *Spaced) ApplyHappened(Happened) {}

// Prose that mentions cqrs:aggregate elsewhere in a comment is left alone.
type Plain struct{}
