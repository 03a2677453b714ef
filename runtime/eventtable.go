package runtime

// EventTable is what a Repository needs of an aggregate's event table:
// registry.Events, which generated code builds, implements it.
type EventTable[S, E any] interface {
	Apply(state *S, e E)                                            // evolves state by e
	Encode(e E) (EventData, error)                                  // with its wire name and schema
	Decode(name string, schema uint32, data []byte) (E, error)      // into its current type
	Evolve(state *S, name string, schema uint32, data []byte) error // Decode, then Apply
}

// StableEvolver is an optional method of an EventTable (registry.Events
// has it): EvolveStable is Evolve for data whose bytes are never written
// again (an EventView marked Stable), which the decoders may therefore
// keep, slicing strings from data instead of copying it. Repository.Load
// calls it for the events a StreamVisitor lends as stable, and Evolve for
// every other.
type StableEvolver[S any] interface {
	EvolveStable(state *S, name string, schema uint32, data []byte) error
}
