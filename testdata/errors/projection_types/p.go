package projection_types

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
)

//cqrs:aggregate
type Account struct{}

//cqrs:event Account
type Opened struct{}

func (a *Account) ApplyOpened(Opened) {}

//cqrs:projection
type balances struct{}

//cqrs:projection
type Counter int

//cqrs:projection
type Empty struct{}

//cqrs:projection name=shared
type First struct{}

//cqrs:projection name=shared
type Second struct{}

//cqrs:projection name=cqrsgen:mine
type Reserved struct{}

//cqrs:projection Account name= version=2
type Options struct{}

// Projection is generated on every projection type.
//
//cqrs:projection
type Clash struct{ Projection int }

// ClashProjectionName is generated too.
const ClashProjectionName = "x"

func (p *balances) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error { return nil }
func (p *First) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error    { return nil }
func (p *Second) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error   { return nil }
func (p *Reserved) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error { return nil }
func (p *Options) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error  { return nil }
func (p *Clash) OnOpened(ctx context.Context, e runtime.Envelope[Opened]) error    { return nil }
