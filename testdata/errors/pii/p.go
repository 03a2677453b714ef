package pii

//cqrs:aggregate
type Member struct{ Email string }

//cqrs:event Member
type Joined struct {
	User    string
	Age     int
	Email   string `cqrs:"pii=Usr"`
	Phone   string `cqrs:"pii=Age"`
	Visits  int    `cqrs:"pii=User"`
	Other   string `cqrs:"pii=Other"`
	Twice   string `cqrs:"pii=Email"`
	Loose   string `cqrs:"pii"`
	Unknown string `cqrs:"secret"`
}

func (m *Member) ApplyJoined(Joined) {}
