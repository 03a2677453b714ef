package runtime

// EventTable is what a Repository needs of an aggregate's event table:
// registry.Events, which generated code builds, implements it.
type EventTable[S, E any] interface {
	Apply(state *S, e E)                                            // evolves state by e
	Encode(e E) (EventData, error)                                  // with its wire name and schema
	Decode(name string, schema uint32, data []byte) (E, error)      // into its current type
	Evolve(state *S, name string, schema uint32, data []byte) error // Decode, then Apply
}
