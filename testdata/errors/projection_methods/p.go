package projection_methods

import (
	"context"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Opened struct{}

//cqrs:event Account
type Deposited struct{ Amount int64 }

func (a *Account) ApplyOpened(Opened)       {}
func (a *Account) ApplyDeposited(Deposited) {}

// Note is a plain struct, not an event.
type Note struct{}

//cqrs:projection
type Balances struct{}

// Correct.
func (b *Balances) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error { return nil }

// Value receiver.
func (b Balances) OnDeposited(ctx context.Context, e runtime.Envelope[Deposited]) error { return nil }

// No context.
func (b *Balances) OnClosed(e runtime.Envelope[Opened]) error { return nil }

// The event itself instead of an envelope.
func (b *Balances) OnOther(ctx context.Context, e Deposited) error { return nil }

// A pointer to the event.
func (b *Balances) OnPointer(ctx context.Context, e runtime.Envelope[*Deposited]) error { return nil }

// No error result.
func (b *Balances) OnQuiet(ctx context.Context, e runtime.Envelope[Deposited]) {}

// Not an event of this package.
func (b *Balances) OnNote(ctx context.Context, e runtime.Envelope[Note]) error { return nil }

// Not an event of another package.
func (b *Balances) OnTime(ctx context.Context, e runtime.Envelope[time.Time]) error { return nil }

// Not a named type.
func (b *Balances) OnInt(ctx context.Context, e runtime.Envelope[int]) error { return nil }

// A second handler of Opened.
func (b *Balances) OnOpenedAgain(ctx context.Context, e runtime.Envelope[Opened]) error { return nil }

// Not handlers: On followed by a lower-case letter, and unexported.
func (b *Balances) Online() bool { return true }
func (b *Balances) onOpened()    {}

// Reset and Position with the wrong signatures.
func (b *Balances) Reset()                   {}
func (b *Balances) Position() (int64, error) { return 0, nil }

//cqrs:projection
type Audit struct {
	// A field named Reset is not a method.
	Reset func(context.Context) error
}

func (a *Audit) OnDeposited(ctx context.Context, e runtime.Envelope[Deposited]) error { return nil }
