// Package transfer is the bank example's saga: a transfer of money between
// two accounts of package account, as a business process that survives
// crashes. A transfer is requested (the Request aggregate records it); the
// Transfer saga withdraws the amount from the source, deposits it to the
// destination, and refunds the source when the deposit is rejected (the
// destination is closed) or has not happened by the deadline. cqrsgen
// generates the plumbing into cqrs_gen.go; saga.Run runs it.
package transfer

//go:generate go tool cqrsgen

import (
	"context"
	"errors"
	"time"

	"github.com/cqrsgen/cqrsgen/examples/bank/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// DepositTimeout is how long a transfer may take from its request to the
// deposit before the saga gives up and refunds the source.
const DepositTimeout = 30 * time.Second

// Errors of the transfer process.
var (
	// ErrDepositTimedOut is why a transfer whose deposit did not happen
	// in time failed.
	ErrDepositTimedOut = errors.New("transfer: deposit timed out")
	// ErrInvalidTransfer rejects a request that names no accounts, the
	// same account twice, or no money.
	ErrInvalidTransfer = errors.New("transfer: invalid request")
	// ErrAlreadyRequested rejects a second request under one transfer id.
	ErrAlreadyRequested = errors.New("transfer: already requested")
)

// Request records that a transfer was asked for; its id is the transfer
// id, and so the saga instance's.
//
//cqrs:aggregate name=bank.transfer-request
type Request struct {
	Requested bool
}

// Requested records a transfer request.
//
//cqrs:event Request name=bank.transfer.requested
type Requested struct {
	From, To string
	Amount   int64
}

// RequestTransfer asks to move Amount cents from account From to account
// To.
//
//cqrs:command Request
type RequestTransfer struct {
	From, To string
	Amount   int64
}

// ApplyRequested evolves the request.
func (r *Request) ApplyRequested(Requested) { r.Requested = true }

// HandleRequestTransfer accepts a well-formed request once.
func (r *Request) HandleRequestTransfer(c RequestTransfer) ([]RequestEvent, error) {
	switch {
	case r.Requested:
		return nil, ErrAlreadyRequested
	case c.From == "" || c.To == "" || c.From == c.To || c.Amount <= 0:
		return nil, ErrInvalidTransfer
	}
	return []RequestEvent{Requested(c)}, nil
}

// Transfer is the state of one transfer in flight: the saga.
//
//cqrs:saga name=bank.transfer
type Transfer struct {
	From, To  string
	Amount    int64
	Withdrawn bool
	Deposited bool
}

// reference tags the account events of transfer id.
func reference(what, id string) string { return what + " " + id }

// CorrelateRequested: a request starts the transfer with its own id.
func (Transfer) CorrelateRequested(e runtime.Envelope[Requested]) (string, bool) { return e.ID, true }

// OnRequested withdraws the amount from the source (refunded if the
// transfer fails later) and gives the deposit DepositTimeout.
func (t *Transfer) OnRequested(ctx context.Context, e runtime.Envelope[Requested], do *saga.Actions) error {
	t.From, t.To, t.Amount = e.Event.From, e.Event.To, e.Event.Amount
	do.Send(t.From, account.Withdraw{Amount: t.Amount, Reference: reference("transfer", do.Instance())}).
		Compensate(t.From, account.Deposit{Amount: t.Amount, Reference: reference("refund", do.Instance())})
	do.Deadline("deposit", DepositTimeout)
	return nil
}

// CorrelateWithdrawn: the withdrawal this saga's step made.
func (Transfer) CorrelateWithdrawn(e runtime.Envelope[account.Withdrawn]) (string, bool) {
	return saga.SentBy(e.Metadata, TransferSagaName)
}

// OnWithdrawn deposits the money to the destination.
func (t *Transfer) OnWithdrawn(ctx context.Context, e runtime.Envelope[account.Withdrawn], do *saga.Actions) error {
	if t.Withdrawn {
		return nil // a compensating withdrawal (none here) would land here
	}
	t.Withdrawn = true
	do.Send(t.To, account.Deposit{Amount: t.Amount, Reference: reference("transfer", do.Instance())}).
		Compensate(t.To, account.Withdraw{Amount: t.Amount, Reference: reference("reversal", do.Instance())})
	return nil
}

// CorrelateDeposited: the deposit this saga's step made.
func (Transfer) CorrelateDeposited(e runtime.Envelope[account.Deposited]) (string, bool) {
	return saga.SentBy(e.Metadata, TransferSagaName)
}

// OnDeposited completes the transfer.
func (t *Transfer) OnDeposited(ctx context.Context, e runtime.Envelope[account.Deposited], do *saga.Actions) error {
	t.Deposited = true
	do.CancelDeadline("deposit")
	do.Complete()
	return nil
}

// OnDeadline fails a transfer whose deposit has not happened: the
// withdrawal is refunded.
func (t *Transfer) OnDeadline(ctx context.Context, d saga.Deadline, do *saga.Actions) error {
	if d.Name == "deposit" && !t.Deposited {
		do.Fail(ErrDepositTimedOut)
	}
	return nil
}
