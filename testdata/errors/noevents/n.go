package noevents

//cqrs:aggregate
type Account struct{}

//cqrs:command Account
type Open struct{}

func (a *Account) HandleOpen(Open) ([]AccountEvent, error) { return nil, nil }
