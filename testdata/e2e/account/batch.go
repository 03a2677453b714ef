package account

// Batch is an event that carries other events, applied through Apply: the
// generated tables are built on first use, so an Apply method that calls
// Apply is no initialization cycle.
//
//cqrs:event Account
type Batch struct{ Deposits []Deposited }

// ApplyBatch applies each deposit of the batch through Apply.
func (a *Account) ApplyBatch(e Batch) {
	for _, d := range e.Deposits {
		a.Apply(d)
	}
}
