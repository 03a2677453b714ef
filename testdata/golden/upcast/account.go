// Package upcast exercises schema evolution: a three-version chain with
// an unexported intermediate shape, and an event that absorbs two former
// wire names.
package upcast

// Account is the aggregate.
//
//cqrs:aggregate name=bank.account
type Account struct {
	Cents int64
	Notes []string
}

// Deposited is version 3: cents and a currency.
//
//cqrs:event Account name=bank.account.deposited version=3
type Deposited struct {
	Cents    int64
	Currency string
}

// DepositedV2 is how version 2 was stored: cents only.
type DepositedV2 struct {
	Cents int64
}

// depositedV1 is how version 1 was stored: a float amount.
type depositedV1 struct {
	Amount float64
}

//cqrs:upcast
func depositedV1ToV2(old depositedV1) DepositedV2 {
	return DepositedV2{Cents: int64(old.Amount * 100)}
}

//cqrs:upcast
func depositedV2ToV3(old DepositedV2) Deposited {
	return Deposited{Cents: old.Cents, Currency: "EUR"}
}

// Annotated is version 2 of what used to be two events, noted and
// commented, each at version 1.
//
//cqrs:event Account name=bank.account.annotated version=2
type Annotated struct {
	Text string
	By   string
}

// NotedV1 is the stored shape of bank.account.noted@1.
type NotedV1 struct {
	Note string
}

// CommentedV1 is the stored shape of bank.account.commented@1.
type CommentedV1 struct {
	Comment string
	Author  string
}

//cqrs:upcast from=bank.account.noted@1
func annotatedFromNoted(old NotedV1) Annotated {
	return Annotated{Text: old.Note}
}

//cqrs:upcast from=bank.account.commented@1
func annotatedFromCommented(old CommentedV1) Annotated {
	return Annotated{Text: old.Comment, By: old.Author}
}

// Opened never changed.
//
//cqrs:event Account
type Opened struct{}

func (a *Account) ApplyDeposited(e Deposited) { a.Cents += e.Cents }
func (a *Account) ApplyAnnotated(e Annotated) { a.Notes = append(a.Notes, e.Text) }
func (a *Account) ApplyOpened(Opened)         {}
