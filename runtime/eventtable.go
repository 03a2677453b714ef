package runtime

// EventTable is what a Repository needs of an aggregate's event table:
// registry.Events, which generated code builds, implements it.
type EventTable[S, E any] interface {
	// Apply evolves state by e.
	Apply(state *S, e E)
	// Encode encodes e with its wire name and schema version.
	Encode(e E) (EventData, error)
	// Decode decodes a stored event into its current type.
	Decode(name string, schema uint32, data []byte) (E, error)
	// Evolve decodes a stored event and applies it to state in one step.
	Evolve(state *S, name string, schema uint32, data []byte) error
}
