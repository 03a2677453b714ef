package upcastshape

//cqrs:aggregate
type Account struct{ Balance int64 }

//cqrs:event Account version=2
type Deposited struct{ Amount int64 }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }

type DepositedV1 struct{ Amount int64 }

// Correct, so Deposited has no gap.
//
//cqrs:upcast
func depositedV1ToV2(old DepositedV1) Deposited { return Deposited(old) }

type OldA struct{}
type OldB struct{}
type OldC struct{}
type OldD struct{}

// A pointer is not a struct value.
//
//cqrs:upcast
func pointer(old *OldA) Deposited { return Deposited{} }

// Upcasters cannot fail.
//
//cqrs:upcast
func withError(old OldB) (Deposited, error) { return Deposited{}, nil }

// Exactly one parameter.
//
//cqrs:upcast
func twoParams(old OldC, n int) Deposited { return Deposited{} }

// Not generic.
//
//cqrs:upcast
func generic[T any](old OldD) Deposited { return Deposited{} }

// The input must be an unannotated old shape, not the event itself.
//
//cqrs:upcast
func readsEvent(old Deposited) Deposited { return old }

// The result must be an event or another upcaster's input.
//
//cqrs:upcast
func returnsState(old OldA) Account { return Account{} }

// Not a method.
//
//cqrs:upcast
func (a *Account) method(old OldA) Deposited { return Deposited{} }

// Not a type.
//
//cqrs:upcast
type NotAFunc struct{}

// Options.
//
//cqrs:upcast from=deposited from=x@1
func badFrom(old OldB) Deposited { return Deposited{} }

//cqrs:upcast from=deposited@0 version=2 extra
func badVersion(old OldC) Deposited { return Deposited{} }

func inBody() {
	//cqrs:upcast
	_ = 1
}
