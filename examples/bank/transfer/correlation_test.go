package transfer_test

import (
	"context"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/examples/bank/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// TestTransferCarriesCorrelation: through generated code, the withdrawal
// the saga sends is caused by the request, the deposit by the withdrawal,
// and both carry the request's correlation id.
func TestTransferCarriesCorrelation(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			defer s.Close()
			accounts := bank(t, s)
			start(t, s, accounts, saga.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)))
			ctx := runtime.ContextWithCorrelation(context.Background(), "req-ok")
			var req runtime.AppendResult
			if _, err := transfer.NewRequestRepository(s).Execute(ctx, "ok", transfer.RequestTransfer{From: "src", To: "dst", Amount: 30_00},
				runtime.ReportAppend(&req)); err != nil {
				t.Fatal(err)
			}
			waitFinal(t, s, accounts, "ok")

			sent := func(id string) runtime.Envelope[any] {
				for env, err := range accounts.Events(context.Background(), id, 0) {
					if err != nil {
						t.Fatal(err)
					}
					if inst, ok := saga.SentBy(env.Metadata, transfer.TransferSagaName); ok && inst == "ok" {
						return runtime.Envelope[any]{Position: env.Position, Metadata: env.Metadata, Name: env.Name}
					}
				}
				t.Fatalf("%s has no event of transfer ok", id)
				return runtime.Envelope[any]{}
			}
			withdrawn, deposited := sent("src"), sent("dst")
			for _, c := range []struct {
				env   runtime.Envelope[any]
				cause uint64
			}{{withdrawn, req.LastPosition}, {deposited, withdrawn.Position}} {
				md := c.env.Metadata
				var cause string // the causing event's reference: its id
				for rec, err := range s.ReadAll(context.Background(), c.cause-1) {
					if err != nil {
						t.Fatal(err)
					}
					cause = runtime.RefOf(rec)
					break
				}
				if md[runtime.MetadataCorrelation] != "req-ok" || md[runtime.MetadataCausation] != cause || cause == "" {
					t.Errorf("%s: metadata %v, want correlation req-ok and causation %d", c.env.Name, md, c.cause)
				}
			}
		})
	}
}
