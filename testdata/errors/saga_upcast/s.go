package saga_upcast

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

//cqrs:aggregate
type Room struct{}

//cqrs:event Room
type Held struct{}

func (r *Room) ApplyHeld(Held) {}

//cqrs:saga version=3
type Gap struct{}

type GapV2 struct{}

//cqrs:upcast
func gapV2ToV3(old GapV2) Gap { return Gap{} }

//cqrs:saga
type First struct{}

type FirstV0 struct{}

//cqrs:upcast
func firstV0ToV1(old FirstV0) First { return First{} }

//cqrs:saga version=2
type Named struct{}

type NamedV1 struct{}

//cqrs:upcast from=named@1
func namedV1ToV2(old NamedV1) Named { return Named{} }

func (Gap) CorrelateHeld(e runtime.Envelope[Held]) (string, bool)   { return e.ID, true }
func (First) CorrelateHeld(e runtime.Envelope[Held]) (string, bool) { return e.ID, true }
func (Named) CorrelateHeld(e runtime.Envelope[Held]) (string, bool) { return e.ID, true }

func (s *Gap) OnHeld(ctx context.Context, e runtime.Envelope[Held], do *saga.Actions) error {
	return nil
}
func (s *First) OnHeld(ctx context.Context, e runtime.Envelope[Held], do *saga.Actions) error {
	return nil
}
func (s *Named) OnHeld(ctx context.Context, e runtime.Envelope[Held], do *saga.Actions) error {
	return nil
}
