package model

// Upcast is one older stored form of an event or of a saga's state:
// values stored under (WireName, Version) decode into Struct, an
// unannotated struct type describing that old shape, and the //cqrs:upcast
// funcs Funcs, applied in order, lift the value to the current event (or
// saga) type. A saga state's WireName is the saga's name.
type Upcast struct {
	// WireName and Version identify the stored form.
	WireName string
	Version  uint32
	// Struct is the old shape (its codec is generated too).
	Struct *Struct
	// Funcs are the upcaster funcs from Struct to the current type,
	// oldest first; Funcs[0] takes a Struct.
	Funcs []string
	// Pos is the position of the upcaster that reads this form.
	Pos Pos
}
