package methods

//cqrs:aggregate
type Account struct {
	Balance      int64
	ApplyAudited func(Audited)
}

//cqrs:event Account
type Opened struct{}

//cqrs:event Account
type Deposited struct{ Amount int64 }

//cqrs:event Account
type Withdrawn struct{ Amount int64 }

//cqrs:event Account
type Audited struct{}

//cqrs:command Account
type Open struct{}

//cqrs:command Account
type Deposit struct{ Amount int64 }

//cqrs:command Account
type Withdraw struct{ Amount int64 }

//cqrs:command Account
type Close struct{}

// Missing ApplyOpened and HandleOpen.

// Value receiver: Apply must change the state.
func (a Account) ApplyDeposited(e Deposited) {}

// Pointer parameter: events travel as values.
func (a *Account) ApplyWithdrawn(e *Withdrawn) {}

// Wrong results.
func (a *Account) HandleDeposit(c Deposit) []AccountEvent { return nil }

// Wrong element type.
func (a *Account) HandleWithdraw(c Withdraw) ([]Withdrawn, error) { return nil, nil }

// Value receiver is fine for Handle; this one is correct.
func (a Account) HandleClose(c Close) ([]AccountEvent, error) { return nil, nil }
