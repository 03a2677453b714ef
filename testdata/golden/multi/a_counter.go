// Package multi is a golden case spread over several files: an aggregate
// without commands or snapshots, a second aggregate whose events live in
// another file, and types of every kind of declaration group.
package multi

// Counter counts.
//
//cqrs:aggregate
type Counter struct {
	N    int
	Tags map[string][]string
}

// Incremented raises the count.
//
//cqrs:event Counter
type Incremented struct{ By int }

// ApplyIncremented applies Incremented.
func (c *Counter) ApplyIncremented(e Incremented) { c.N += e.By }
