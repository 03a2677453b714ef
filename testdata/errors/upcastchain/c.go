package upcastchain

//cqrs:aggregate
type Account struct{ Balance int64 }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ApplyWithdrawn(e Withdrawn) { a.Balance -= e.Amount }
func (a *Account) ApplyClosed(Closed)         {}
func (a *Account) ApplyOpened(Opened)         {}
func (a *Account) ApplyMoved(Moved)           {}

// A gap: version 3 with an upcaster from 2 but none from 1 to 2.
//
//cqrs:event Account version=3
type Deposited struct{ Amount int64 }

type DepositedV2 struct{ Amount int64 }

//cqrs:upcast
func depositedV2ToV3(old DepositedV2) Deposited { return Deposited(old) }

// No upcaster at all for version 2.
//
//cqrs:event Account version=2
type Withdrawn struct{ Amount int64 }

// The result is not the next version: from=…@1 into version 3.
//
//cqrs:event Account version=3
type Closed struct{}

type ClosedV1 struct{}
type ClosedV2 struct{}

//cqrs:upcast from=Closed@1
func closedV1ToV3(old ClosedV1) Closed { return Closed{} }

//cqrs:upcast
func closedV2ToV3(old ClosedV2) Closed { return Closed{} }

// Version 1 has nothing older to read.
//
//cqrs:event Account
type Opened struct{}

type OpenedV0 struct{}

//cqrs:upcast
func openedV0(old OpenedV0) Opened { return Opened{} }

// A dead end: MovedV2 is neither an event nor read by an upcaster.
//
//cqrs:event Account
type Moved struct{}

type MovedV1 struct{}
type MovedV2 struct{}

//cqrs:upcast
func movedV1ToV2(old MovedV1) MovedV2 { return MovedV2{} }

// A cycle.
type LoopA struct{}
type LoopB struct{}

//cqrs:upcast
func loopAB(old LoopA) LoopB { return LoopB{} }

//cqrs:upcast
func loopBA(old LoopB) LoopA { return LoopA{} }
