package model

// Saga is a type annotated //cqrs:saga: a process manager whose state is
// the annotated struct, reacting to events of any aggregates (of this
// package or imported ones) and sending commands to their repositories.
type Saga struct {
	// GoName is the saga type's Go identifier; Name its stable name
	// (name= option, default GoName), which names its instance streams,
	// checkpoint and idempotency keys.
	GoName, Name string
	// State is the saga struct (its codec encodes the instance state).
	State *Struct
	// Version is the state's schema version (version= option, default 1),
	// stored with every state an instance persists.
	Version uint32
	// Upcasts are the older stored forms of the state, versions
	// ascending: each WireName is the saga's Name, and its Funcs lift it
	// to State.
	Upcasts []*Upcast
	// Reactions are its On<Event> methods in source order, each with its
	// Correlate<Event> rule.
	Reactions []*Reaction
	// Deadline reports whether the type has an OnDeadline method.
	Deadline bool
	// Targets are the aggregates the package sends commands to (through
	// SagaActions.Send and SagaSend.Compensate), in order of first use.
	Targets []*CommandTarget
	Pos     Pos
}

// Reaction is one On<Event> method of a saga and its correlation rule.
type Reaction struct {
	// Method is the reaction's name (On<Event>); Correlate the correlation
	// rule's (Correlate<Event>).
	Method, Correlate string
	// Event is the event type it reacts to.
	Event EventRef
	Pos   Pos
}

// CommandTarget is an aggregate, of this package or an imported one, that
// a saga sends commands to through its generated repository.
type CommandTarget struct {
	// PkgPath and PkgName are the aggregate's package.
	PkgPath, PkgName string
	// Aggregate is the aggregate's Go name: its commands satisfy
	// <Aggregate>Command and execute through *<Aggregate>Repository.
	Aggregate string
}
