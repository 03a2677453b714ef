package lockrename

// Book was Library: its stream type name is still "Library" in cqrs.lock.
//
//cqrs:aggregate
type Book struct{ Title string }

// BookAdded was Added: same fields, new default wire name.
//
//cqrs:event Book
type BookAdded struct{ Title string }

func (b *Book) ApplyBookAdded(e BookAdded) { b.Title = e.Title }

// Shelf keeps its name, but its event Placed was renamed to Shelved, and
// the //cqrs:retired line for Lent@1 was deleted.
//
//cqrs:aggregate
type Shelf struct{ Count int }

//cqrs:event Shelf
type Shelved struct {
	Book string
	Row  int
}

func (s *Shelf) ApplyShelved(Shelved) { s.Count++ }
