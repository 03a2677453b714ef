// Package upcastbench is a generated package for measuring decoding
// through upcaster chains: Moved is at version 4 with three upcasters
// behind it, Paid at version 2 with one, Noted has none.
package upcastbench

//go:generate go tool cqrsgen

// Ledger is the aggregate.
//
//cqrs:aggregate name=bench.ledger
type Ledger struct{ N int64 }

// Noted never changed.
//
//cqrs:event Ledger name=bench.noted
type Noted struct {
	Amount int64
	Ref    string
}

// Paid is version 2.
//
//cqrs:event Ledger name=bench.paid version=2
type Paid struct {
	Amount int64
	Ref    string
}

// PaidV1 is bench.paid@1.
type PaidV1 struct {
	Amount int32
	Ref    string
}

//cqrs:upcast
func paidV1ToV2(old PaidV1) Paid { return Paid{Amount: int64(old.Amount), Ref: old.Ref} }

// Moved is version 4.
//
//cqrs:event Ledger name=bench.moved version=4
type Moved struct {
	Amount int64
	Ref    string
}

// MovedV1 is bench.moved@1.
type MovedV1 struct {
	Amount int32
	Ref    string
}

// MovedV2 is bench.moved@2.
type MovedV2 struct {
	Amount int64
	Ref    string
}

// MovedV3 is bench.moved@3.
type MovedV3 struct {
	Cents int64
	Ref   string
}

//cqrs:upcast
func movedV1ToV2(old MovedV1) MovedV2 { return MovedV2{Amount: int64(old.Amount), Ref: old.Ref} }

//cqrs:upcast
func movedV2ToV3(old MovedV2) MovedV3 { return MovedV3{Cents: old.Amount, Ref: old.Ref} }

//cqrs:upcast
func movedV3ToV4(old MovedV3) Moved { return Moved{Amount: old.Cents, Ref: old.Ref} }

// ApplyNoted applies Noted.
func (l *Ledger) ApplyNoted(e Noted) { l.N += e.Amount }

// ApplyPaid applies Paid.
func (l *Ledger) ApplyPaid(e Paid) { l.N += e.Amount }

// ApplyMoved applies Moved.
func (l *Ledger) ApplyMoved(e Moved) { l.N += e.Amount }
