package piiplace

//cqrs:aggregate
type Member struct {
	User  string
	Email string  `cqrs:"pii=User"` // a state is not sealed
	Last  *Joined // nor is an event inside another struct
}

//cqrs:event Member
type Joined struct {
	User  string
	Email string `cqrs:"pii=User"`
}

func (m *Member) ApplyJoined(Joined) {}
