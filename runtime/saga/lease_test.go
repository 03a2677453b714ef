package saga_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/internal/leasetest"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// TestLeasedSagaRunners runs the transfer saga in two runners over a store
// with leases, as two replicas would: only the lease holder executes
// steps; when it stops, the other takes the lease over and finishes the
// transfers requested meanwhile.
func TestLeasedSagaRunners(t *testing.T) {
	mem := memory.New()
	table := leasetest.NewTable()
	f := newFixture(t, mem)
	var executed [2]atomic.Int64
	runs := make([]*sagaRun, 2)
	for i := range runs {
		sg := newTransferSaga(f.repo, transferOptions{execute: func(ctx context.Context, id string, c walletCmd, opts ...runtime.ExecOption) (uint64, error) {
			executed[i].Add(1)
			return f.repo.Execute(ctx, id, c, opts...)
		}})
		runs[i] = f.run(t, leasetest.New(mem, table), sg,
			saga.Projection(projection.LeaseHolder(fmt.Sprint("r", i)), projection.LeaseTTL(time.Second)))
		if i == 0 {
			for {
				held := table.Get(saga.ProjectionName(sagaName)).Holder
				if held == "r0" {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	sg := newTransferSaga(f.repo, transferOptions{})
	requestTransfer(t, mem, "t1", "a", "b", 30)
	waitSaga(t, mem, sg, "t1", final)
	if executed[0].Load() != 2 || executed[1].Load() != 0 {
		t.Fatalf("steps executed by the holder %d, by the standby %d; want 2 and 0", executed[0].Load(), executed[1].Load())
	}
	if err := runs[0].stop(); err != nil {
		t.Fatal(err)
	}
	requestTransfer(t, mem, "t2", "a", "b", 20)
	if in := waitSaga(t, mem, sg, "t2", final); in.Status != saga.Completed {
		t.Fatalf("t2 %v", in.Status)
	}
	if executed[1].Load() != 2 {
		t.Fatalf("the runner that took over executed %d steps, want 2", executed[1].Load())
	}
	l := table.Get(saga.ProjectionName(sagaName))
	if l.Holder != "r1" || l.Epoch != 2 {
		t.Fatalf("saga lease %+v, want r1 at epoch 2", l)
	}
}
