package retired

// Book retires stored events no type reads any more; each mistake below
// is reported once.
//
//cqrs:aggregate
//cqrs:retired Lent@1 Lent@1 Added@1 nover Bad@0
type Book struct{ Title string }

//cqrs:event Book
type Added struct{ Title string }

func (b *Book) ApplyAdded(e Added) { b.Title = e.Title }

//cqrs:retired Gone@1
type NotAnAggregate struct{}

//cqrs:retired
type Empty struct{}
