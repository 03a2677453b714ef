package model

// Upcast is one older stored form of an event: events stored under
// (WireName, Version) decode into Struct, an unannotated struct type
// describing that old shape, and the //cqrs:upcast funcs Funcs, applied
// in order, lift the value to the current event type.
type Upcast struct {
	// WireName and Version identify the stored form.
	WireName string
	Version  uint32
	// Struct is the old shape (its codec is generated too).
	Struct *Struct
	// Funcs are the upcaster funcs from Struct to the current event,
	// oldest first; Funcs[0] takes a Struct.
	Funcs []string
	// Pos is the position of the upcaster that reads this form.
	Pos Pos
}
