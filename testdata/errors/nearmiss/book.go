package nearmiss

import "errors"

// Each directive below has one mistake, and each yields one error: the
// misspelt or spaced directive is still read as the one meant, so its
// type, its events and the generated BookEvent are not reported too.

//cqrs:agregate
type Book struct {
	Title  string
	OnLoan bool
}

//cqrs:event Book
type Added struct{ Title string }

// cqrs:event Book
type Lent struct{ To string }

//cqrs:command Book
type Lend struct{ To string }

func (b *Book) ApplyAdded(e Added) { b.Title = e.Title }
func (b *Book) ApplyLent(Lent)     { b.OnLoan = true }

func (b *Book) HandleLend(c Lend) ([]BookEvent, error) {
	if b.OnLoan {
		return nil, errors.New("already lent")
	}
	return []BookEvent{Lent{To: c.To}}, nil
}

//cqrs:aggregate snapshots=50
type Shelf struct{ Books int }

//cqrs:evnt Shelf
type Filled struct{}

func (s *Shelf) ApplyFilled(Filled) { s.Books++ }

var _ ShelfEvent = Filled{}
