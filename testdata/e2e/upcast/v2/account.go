// Package bank, version 2 of the schema: Deposited carries cents and a
// currency (version 2, upcast from 1), noted became annotated (a rename,
// version 2), and the state changed shape (so version 1 snapshots must be
// ignored).
package bank

//go:generate go tool cqrsgen

//cqrs:aggregate name=bank.account snapshot=2
type Account struct {
	Cents    int64
	Currency string
	Notes    []string
	Events   int // counts every event applied: wrong if a snapshot were misread
}

//cqrs:event Account name=bank.account.opened
type Opened struct{ Owner string }

//cqrs:event Account name=bank.account.deposited version=2
type Deposited struct {
	Cents    int64
	Currency string
}

// DepositedV1 is bank.account.deposited@1.
type DepositedV1 struct{ Amount int64 }

//cqrs:upcast
func depositedV1ToV2(old DepositedV1) Deposited {
	return Deposited{Cents: old.Amount * 100, Currency: "EUR"}
}

//cqrs:event Account name=bank.account.annotated version=2
type Annotated struct{ Text, By string }

// NotedV1 is bank.account.noted@1.
type NotedV1 struct{ Note string }

//cqrs:upcast from=bank.account.noted@1
func notedToAnnotated(old NotedV1) Annotated { return Annotated{Text: old.Note, By: "v1"} }

func (a *Account) ApplyOpened(Opened) { a.Events++ }
func (a *Account) ApplyDeposited(e Deposited) {
	a.Cents += e.Cents
	a.Currency = e.Currency
	a.Events++
}
func (a *Account) ApplyAnnotated(e Annotated) {
	a.Notes = append(a.Notes, e.Text+"/"+e.By)
	a.Events++
}
