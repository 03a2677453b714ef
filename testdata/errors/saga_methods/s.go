package saga_methods

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Opened struct{}

//cqrs:event Account
type Closed struct{}

//cqrs:command Account
type Open struct{}

func (a *Account) ApplyOpened(Opened) {}
func (a *Account) ApplyClosed(Closed) {}

func (a *Account) HandleOpen(Open) ([]AccountEvent, error) { return nil, nil }

// NotAnEvent has no directive.
type NotAnEvent struct{}

// NotACommand has no directive.
type NotACommand struct{}

//cqrs:saga
type Flow struct{ N int }

// A reaction without a correlation rule.
func (s *Flow) OnOpened(ctx context.Context, e runtime.Envelope[Opened], do *saga.Actions) error {
	do.Send("x", Open{})
	do.Send("x", NotACommand{})
	do.Send("x", &Open{})
	do.Send("x", "open").Compensate("x", 42)
	return nil
}

// A reaction to a type that is not an event.
func (s *Flow) OnNotAnEvent(ctx context.Context, e runtime.Envelope[NotAnEvent], do *saga.Actions) error {
	return nil
}

func (Flow) CorrelateNotAnEvent(e runtime.Envelope[NotAnEvent]) (string, bool) { return "", false }

// Wrong reaction signature: no actions.
func (s *Flow) OnClosed(ctx context.Context, e runtime.Envelope[Closed]) error { return nil }

func (Flow) CorrelateClosed(e runtime.Envelope[Closed]) (string, bool) { return "", false }

// A correlation rule of no reaction.
func (Flow) CorrelateRenamed(e runtime.Envelope[Opened]) (string, bool) { return "", false }

// Wrong deadline signature.
func (s *Flow) OnDeadline(ctx context.Context, d saga.Deadline) error { return nil }

//cqrs:saga
type Twice struct{}

func (Twice) CorrelateOpened(e runtime.Envelope[Opened]) string { return "" }

func (s *Twice) OnOpened(ctx context.Context, e runtime.Envelope[Opened], do *saga.Actions) error {
	return nil
}
