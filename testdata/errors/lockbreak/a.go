package lockbreak

//cqrs:aggregate name=account
type Account struct{ Balance string } // state changes are fine: snapshots are rebuilt

// Deposited's Amount was an int64, and it had a Note.
//
//cqrs:event Account name=deposited
type Deposited struct {
	Amount string
	Memo   string // new fields are fine
}

// Withdrawn renamed Amount to Sum.
//
//cqrs:event Account name=withdrawn
type Withdrawn struct {
	Sum       int64
	Reference string
}

// Opened's nested Address.Zip was an int.
//
//cqrs:event Account name=opened
type Opened struct {
	Owner   string
	Address Address
}

// Address is part of Opened.
type Address struct {
	Street string
	Zip    string
}

// Closed was stored as "closed"; its wire name changed without a version
// bump and an upcaster.
//
//cqrs:event Account name=account.closed
type Closed struct{}

// Noted was version 2; versions never go down.
//
//cqrs:event Account name=noted
type Noted struct{ Text string }

// Moved is version 2 now, and its upcaster's input must match how version
// 1 was stored: From was a string.
//
//cqrs:event Account name=moved version=2
type Moved struct{ From, To string }

// MovedV1 is moved@1 as the upcaster reads it.
type MovedV1 struct{ From int64 }

//cqrs:upcast
func movedV1ToV2(old MovedV1) Moved { return Moved{} }

func (a *Account) ApplyDeposited(Deposited) {}
func (a *Account) ApplyWithdrawn(Withdrawn) {}
func (a *Account) ApplyOpened(Opened)       {}
func (a *Account) ApplyClosed(Closed)       {}
func (a *Account) ApplyNoted(Noted)         {}
func (a *Account) ApplyMoved(Moved)         {}

// Ledger was stored under the stream type "ledger".
//
//cqrs:aggregate name=books
type Ledger struct{}

//cqrs:event Ledger name=posted
type Posted struct{}

func (l *Ledger) ApplyPosted(Posted) {}
