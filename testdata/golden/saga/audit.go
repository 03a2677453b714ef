package saga

import (
	"context"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// Audit counts placed orders. Its state changed shape twice, so instances
// stored at versions 1 and 2 are lifted by the upcasters below.
//
//cqrs:saga name=audit version=3
type Audit struct {
	Orders int64
	Last   string
}

// AuditV1 is Audit's state as stored at version 1.
type AuditV1 struct{ Count int32 }

// AuditV2 is Audit's state as stored at version 2.
type AuditV2 struct{ Orders int64 }

//cqrs:upcast
func auditV1ToV2(old AuditV1) AuditV2 { return AuditV2{Orders: int64(old.Count)} }

//cqrs:upcast
func auditV2ToV3(old AuditV2) Audit { return Audit{Orders: old.Orders} }

func (Audit) CorrelatePlaced(e runtime.Envelope[Placed]) (string, bool) { return "all", true }

func (s *Audit) OnPlaced(ctx context.Context, e runtime.Envelope[Placed], do *saga.Actions) error {
	s.Orders++
	s.Last = e.ID
	return nil
}
