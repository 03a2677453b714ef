package pointers

//cqrs:aggregate
type Account struct{ Balance int64 }

//cqrs:event Account
type Deposited struct{ Amount int64 }

//cqrs:event Account
type Noted struct{ Text string }

//cqrs:command Account
type Deposit struct{ Amount int64 }

//cqrs:command Account
type Note struct{ Text string }

func (a *Account) ApplyDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ApplyNoted(Noted)           {}

// HandleDeposit returns pointers in a literal and through append.
func (a *Account) HandleDeposit(c Deposit) ([]AccountEvent, error) {
	events := []AccountEvent{&Deposited{Amount: c.Amount}}
	events = append(events, (&Noted{Text: "deposit"}))
	return events, nil
}

// HandleNote uses pointers that never become events: no error.
func (a *Account) HandleNote(c Note) ([]AccountEvent, error) {
	drafts := []*Noted{&Noted{Text: c.Text}}
	drafts = append(drafts, &Noted{Text: "again"})
	n := &Noted{Text: c.Text}
	return []AccountEvent{Noted{Text: drafts[0].Text + n.Text}}, nil
}
