package lockparse

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Opened struct{}

func (a *Account) ApplyOpened(Opened) {}
