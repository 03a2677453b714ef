package piilock

//cqrs:aggregate name=member
type Member struct{}

// Joined's lock has Email in the clear, Phone and Name sealed under User.
//
//cqrs:event Member name=joined
type Joined struct {
	User  string
	Alias string // new fields are fine
	Email string `cqrs:"pii=User"` // tag added
	Phone string // tag removed
	Name  string `cqrs:"pii=Alias"` // subject changed
}

func (m *Member) ApplyJoined(Joined) {}
