package multi

type (
	// Placed records a placed order.
	//cqrs:event Order name=order.placed
	Placed struct{ Lines []Line }

	// Noted attaches a note.
	//cqrs:event Order name=order.noted version=3
	Noted struct{ Text string }
)

// Reset zeroes a counter.
//
//cqrs:event Counter
type Reset struct{}

// ApplyPlaced applies Placed.
func (o *Order) ApplyPlaced(e Placed) { o.Lines, o.Placed = e.Lines, true }

// ApplyNoted applies Noted.
func (o *Order) ApplyNoted(e Noted) { o.Note = &e.Text }

// ApplyReset applies Reset.
func (c *Counter) ApplyReset(Reset) { c.N = 0 }
