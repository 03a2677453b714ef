package typeerror

//cqrs:aggregate
type Account struct{ Balance int64 }

//cqrs:event Account
type Deposited struct{ Amount int64 }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }

// Generated identifiers may be missing before the first run...
var _ AccountEvent = Deposited{}

func replay(a *Account, evs []AccountEvent) {
	for _, e := range evs {
		a.Apply(e)
	}
}

// ...but other type errors are reported.
func broken() int { return undefinedThing + "x" }

// A codec function of a struct that is not in the model is not generated.
var _ = cqrsMarshalNothing

// The codec functions of annotated structs are generated, so this is fine.
var _ = cqrsMarshalDeposited
