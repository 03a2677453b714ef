package upcastconflict

//cqrs:aggregate
type Account struct{ Balance int64 }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ApplyWithdrawn(e Withdrawn) { a.Balance -= e.Amount }
func (a *Account) ApplyNoted(Noted)           {}

//cqrs:event Account name=deposited version=2
type Deposited struct{ Amount int64 }

//cqrs:event Account name=withdrawn
type Withdrawn struct{ Amount int64 }

//cqrs:event Account name=noted version=3
type Noted struct{ Text string }

type DepositedV1 struct{ Amount int64 }
type DepositedV1Again struct{ Amount int64 }

//cqrs:upcast
func depositedV1ToV2(old DepositedV1) Deposited { return Deposited(old) }

// Two upcasters for the same step (deposited@1).
//
//cqrs:upcast
func depositedV1ToV2Again(old DepositedV1Again) Deposited { return Deposited(old) }

// The same old type read twice.
//
//cqrs:upcast from=credited@1
func creditedToDeposited(old DepositedV1) Deposited { return Deposited(old) }

// An old form under another event's wire name.
type PaidOut struct{ Amount int64 }

//cqrs:upcast from=withdrawn@1
func paidOutToDeposited(old PaidOut) Deposited { return Deposited{Amount: -old.Amount} }

// One former name into two events: remark@2 leads to Noted,
// remark@1 to Deposited.
type NotedV1 struct{ Text string }
type RemarkV2 struct{ Text string }
type RemarkV1 struct{ Text string }

//cqrs:upcast from=noted@1
func notedToRemark(old NotedV1) RemarkV2 { return RemarkV2(old) }

//cqrs:upcast from=remark@2
func remarkToNoted(old RemarkV2) Noted { return Noted(old) }

//cqrs:upcast from=remark@1
func remarkToDeposited(old RemarkV1) Deposited { return Deposited{} }
