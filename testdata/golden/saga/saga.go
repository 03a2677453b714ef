package saga

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// Payment moves money for an order.
//
//cqrs:saga name=payment
type Payment struct {
	From, To string
	Amount   int64
	Done     bool
}

func (Payment) CorrelatePlaced(e runtime.Envelope[Placed]) (string, bool) { return e.ID, true }

func (s *Payment) OnPlaced(ctx context.Context, e runtime.Envelope[Placed], do *saga.Actions) error {
	s.From, s.To, s.Amount = e.Event.From, e.Event.To, e.Event.Amount
	do.Send(s.From, Debit{Amount: s.Amount, Ref: "pay:" + do.Instance()}).
		Compensate(s.From, Credit{Amount: s.Amount, Ref: "refund:" + do.Instance()})
	do.Deadline("paid", time.Minute)
	return nil
}

func (Payment) CorrelateDebited(e runtime.Envelope[Debited]) (string, bool) {
	return strings.CutPrefix(e.Event.Ref, "pay:")
}

func (s *Payment) OnDebited(ctx context.Context, e runtime.Envelope[Debited], do *saga.Actions) error {
	var c WalletCommand = Credit{Amount: s.Amount, Ref: "pay:" + do.Instance()}
	do.Send(s.To, c)
	return nil
}

func (*Payment) CorrelateCredited(e runtime.Envelope[Credited]) (string, bool) {
	return saga.SentBy(e.Metadata, PaymentSagaName)
}

func (s *Payment) OnCredited(ctx context.Context, e runtime.Envelope[Credited], do *saga.Actions) error {
	s.Done = true
	do.CancelDeadline("paid")
	do.Complete()
	return nil
}

func (s *Payment) OnDeadline(ctx context.Context, d saga.Deadline, do *saga.Actions) error {
	if !s.Done {
		do.Fail(errors.New("payment timed out"))
	}
	return nil
}
