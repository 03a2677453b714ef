package projection_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/internal/leasetest"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// readSide records what the runners report to ReadSideMetrics.
type readSide struct {
	mu     sync.Mutex
	leases []lease.Event
	last   map[string]projection.Progress
}

func (m *readSide) ObserveCall(instrument.Call) {}
func (m *readSide) ObserveLease(e lease.Event) {
	m.mu.Lock()
	m.leases = append(m.leases, e)
	m.mu.Unlock()
}
func (m *readSide) ObserveProjection(p projection.Progress) {
	m.mu.Lock()
	if m.last == nil {
		m.last = map[string]projection.Progress{}
	}
	m.last[p.Name] = p
	m.mu.Unlock()
}

func (m *readSide) changes() []lease.Change {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lease.Change
	for _, e := range m.leases {
		out = append(out, e.Change)
	}
	return out
}

func waitState(t *testing.T, g *projection.Group, name string, want projection.State) projection.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := g.Status(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v (%v), want %v", name, st.State, st.LastError, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeasedGroups runs one projection in two groups over a store with
// leases, as two processes would: one runs, the other stands by naming the
// holder; when the running one stops it releases the lease and the other
// takes over at once and continues from the checkpoint. An instrumented
// store's ReadSideMetrics sees the lease changes and the lag.
func TestLeasedGroups(t *testing.T) {
	mem := memory.New()
	table := leasetest.NewTable()
	metrics := &readSide{}
	var handled [2]atomic.Int64
	groups := make([]*projection.Group, 2)
	stops := make([]func() error, 2)
	for i := range groups {
		var store runtime.Store = leasetest.New(mem, table)
		if i == 0 {
			store = instrument.New(store, metrics)
		}
		groups[i] = projection.NewGroup(store, projection.LeaseHolder(fmt.Sprint("p", i)), projection.LeaseTTL(time.Second),
			projection.CheckpointEvery(1, 0))
		if err := groups[i].Add(projection.Projection{Name: "count", Handle: func(context.Context, runtime.Record) error {
			handled[i].Add(1)
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
		stops[i] = startGroup(t, groups[i])
		if i == 0 {
			waitState(t, groups[0], "count", projection.Running)
		}
	}
	st := waitState(t, groups[1], "count", projection.Standby)
	if st.Lease.Holder != "p0" || st.Lease.Epoch != 1 {
		t.Fatalf("standby sees lease %+v, want p0 at epoch 1", st.Lease)
	}
	head := appendEvents(t, mem, 30)
	waitFor(t, groups[0], "count", head)
	waitFor(t, groups[1], "count", head) // on the standby: from the saved checkpoint
	if handled[1].Load() != 0 {
		t.Fatalf("the standby handled %d records", handled[1].Load())
	}
	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st = waitState(t, groups[1], "count", projection.Running)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("takeover after a release took %v, want about a poll (200 ms)", took)
	}
	if st.Lease.Holder != "p1" || st.Lease.Epoch != 2 {
		t.Fatalf("new holder's lease %+v, want p1 at epoch 2", st.Lease)
	}
	head = appendEvents(t, mem, 10)
	waitFor(t, groups[1], "count", head)
	if n := handled[1].Load(); n != 10 {
		t.Fatalf("the new holder handled %d records, want the 10 after the checkpoint", n)
	}
	if got := fmt.Sprint(metrics.changes()); got != "[acquired released]" {
		t.Errorf("lease changes reported %s, want [acquired released]", got)
	}
	metrics.mu.Lock()
	p := metrics.last["count"]
	metrics.mu.Unlock()
	if p.Position != 30 || p.State != projection.Stopped {
		t.Errorf("last progress reported %+v, want position 30, stopped", p)
	}
}

// TestLeaseLostByFencing takes the lease away from a running projection
// behind its back (as a takeover after a pause would): its next checkpoint
// is refused, and it stands by instead of failing.
func TestLeaseLostByFencing(t *testing.T) {
	mem := memory.New()
	table := leasetest.NewTable()
	g := projection.NewGroup(leasetest.New(mem, table), projection.LeaseHolder("me"), projection.CheckpointEvery(1, 0))
	if err := g.Add(projection.Projection{Name: "p", Handle: func(context.Context, runtime.Record) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	waitState(t, g, "p", projection.Running)
	l := table.Get("p")
	l.Holder, l.Epoch = "thief", l.Epoch+1
	table.Set(l)
	appendEvents(t, mem, 1)
	st := waitState(t, g, "p", projection.Standby)
	if st.Lease.Holder != "thief" || st.LastError != nil {
		t.Fatalf("status %+v, want standby behind thief, no error", st)
	}
	if _, err := mem.LoadCheckpoint(context.Background(), "p"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("checkpoint after the lease was taken: %v, want none saved", err)
	}
}

// flakyStore fails every read with an error matching ErrUnavailable while
// down is set, as a store whose server restarts.
type flakyStore struct {
	runtime.Store
	down atomic.Bool
}

var errDown = fmt.Errorf("test: %w: connection refused", runtime.ErrUnavailable)

func (f *flakyStore) ReadAll(ctx context.Context, after uint64) iter.Seq2[runtime.Record, error] {
	if f.down.Load() {
		return func(yield func(runtime.Record, error) bool) { yield(runtime.Record{}, errDown) }
	}
	return f.Store.ReadAll(ctx, after)
}

func (f *flakyStore) Wait(ctx context.Context, after uint64) (uint64, error) {
	for !f.down.Load() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		h, err := f.Store.Wait(wctx, after)
		cancel()
		if err == nil || ctx.Err() != nil {
			return h, err
		}
	}
	return 0, errDown
}

func (f *flakyStore) SaveCheckpoint(ctx context.Context, name string, pos uint64) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.SaveCheckpoint(ctx, name, pos)
}

// TestUnavailableIsWaitedOut takes the store down under a projection, a
// Subscribe and a projection whose own handler reports ErrUnavailable with
// a single attempt allowed: all wait (status "waiting"), none ends, and all
// resume by themselves once the store is back.
func TestUnavailableIsWaitedOut(t *testing.T) {
	mem := memory.New()
	s := &flakyStore{Store: mem}
	var modelDown atomic.Bool
	var seen, modelSeen atomic.Uint64
	g := projection.NewGroup(s, projection.HandlerRetry(1, 0))
	if err := g.Add(projection.Projection{Name: "reader", Handle: func(_ context.Context, rec runtime.Record) error {
		seen.Store(rec.Position)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(projection.Projection{Name: "model", Handle: func(_ context.Context, rec runtime.Record) error {
		if modelDown.Load() {
			return fmt.Errorf("read model: %w", errDown)
		}
		modelSeen.Store(rec.Position)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	startGroup(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subLast atomic.Uint64
	subErr := make(chan error, 1)
	go func() {
		for rec, err := range runtime.Subscribe(ctx, s, 0) {
			if err != nil {
				subErr <- err
				return
			}
			subLast.Store(rec.Position)
		}
	}()
	head := appendEvents(t, mem, 10)
	waitFor(t, g, "reader", head)

	s.down.Store(true)
	modelDown.Store(true)
	st := waitState(t, g, "reader", projection.Waiting)
	if !errors.Is(st.LastError, runtime.ErrUnavailable) {
		t.Fatalf("waiting with %v, want an ErrUnavailable", st.LastError)
	}
	s.down.Store(false)
	head = appendEvents(t, mem, 5) // the model's handler fails on these
	waitState(t, g, "model", projection.Waiting)
	modelDown.Store(false)
	waitFor(t, g, "reader", head)
	waitFor(t, g, "model", head)
	for _, name := range []string{"reader", "model"} {
		if st := waitState(t, g, name, projection.Running); st.LastError != nil {
			t.Fatalf("%s resumed with error %v", name, st.LastError)
		}
	}
	for subLast.Load() < head {
		select {
		case err := <-subErr:
			t.Fatalf("subscription ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if seen.Load() != head || modelSeen.Load() != head {
		t.Fatalf("projections at %d and %d, want %d", seen.Load(), modelSeen.Load(), head)
	}
}

// TestStandbyWaitForExactlyOnce: WaitFor on a standby replica of an
// exactly-once projection returns once the holder's read model (shared, as
// a database would be) has committed the position, including when the
// position is a record the projection does not consume.
func TestStandbyWaitForExactlyOnce(t *testing.T) {
	mem := memory.New()
	table := leasetest.NewTable()
	m := newModel()
	groups := make([]*projection.Group, 2)
	for i := range groups {
		groups[i] = projection.NewGroup(leasetest.New(mem, table), projection.LeaseHolder(fmt.Sprint("p", i)))
		if err := groups[i].Add(m.projection("exact", true)); err != nil {
			t.Fatal(err)
		}
		startGroup(t, groups[i])
		waitState(t, groups[i], "exact", []projection.State{projection.Running, projection.Standby}[i])
	}
	head := appendEvents(t, mem, 14) // position 14 is a Noise record, not consumed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := groups[1].WaitFor(ctx, "exact", head); err != nil {
		t.Fatalf("standby WaitFor(%d): %v", head, err)
	}
	if p, _ := m.position(ctx); p != 13 {
		t.Fatalf("model at %d, want 13 (the last consumed record)", p)
	}
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if err := groups[1].WaitFor(short, "exact", head+1); !errors.Is(err, context.DeadlineExceeded) {
		// head+1 does not exist yet: it must wait until the deadline.
		t.Fatalf("standby WaitFor past the head: %v, want the context's deadline", err)
	}
}

// running counts the projections of g in state running.
func running(t *testing.T, g *projection.Group) (n int) {
	t.Helper()
	sts, err := g.Statuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.State == projection.Running {
			n++
		}
	}
	return n
}

// TestPartitionsSpread splits a projection in 4 partitions run by two
// groups over a store with leases, as two replicas: each ends up running
// 2, every record reaches the partition of its stream, and when one group
// stops the other takes all 4.
func TestPartitionsSpread(t *testing.T) {
	mem := memory.New()
	table := leasetest.NewTable()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	groups := make([]*projection.Group, 2)
	stops := make([]func() error, 2)
	for i := range groups {
		groups[i] = projection.NewGroup(leasetest.New(mem, table), projection.LeaseHolder(fmt.Sprint("p", i)),
			projection.LeaseTTL(300*time.Millisecond), projection.CheckpointEvery(1, 0))
		err := groups[i].Add(projection.Projection{Name: "split", Handle: func(ctx context.Context, rec runtime.Record) error {
			p, ok := projection.PartitionFrom(ctx)
			if !ok || projection.PartitionOf(rec.Stream, 4) != p.Index || p.Count != 4 {
				t.Errorf("record of %s at position %d handled by partition %+v (ok %v)", rec.Stream, rec.Position, p, ok)
			}
			mu.Lock()
			seen[rec.Position] = true
			mu.Unlock()
			return nil
		}}, projection.Partitions(4))
		if err != nil {
			t.Fatal(err)
		}
		stops[i] = startGroup(t, groups[i])
	}
	deadline := time.Now().Add(10 * time.Second)
	for running(t, groups[0]) != 2 || running(t, groups[1]) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("running %d and %d partitions, want 2 and 2", running(t, groups[0]), running(t, groups[1]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	head := appendEvents(t, mem, 40)
	for i := range 4 {
		name := projection.PartitionName("split", projection.Partition{Index: i, Count: 4})
		for _, g := range groups {
			waitFor(t, g, name, head) // the holder, or the standby through the store
		}
	}
	mu.Lock()
	for p := uint64(1); p <= head; p++ {
		if !seen[p] {
			t.Errorf("position %d never handled", p)
		}
	}
	mu.Unlock()
	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	for running(t, groups[1]) != 4 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("the remaining group runs %d partitions, want 4", running(t, groups[1]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if projection.PartitionOf(runtime.StreamID{Type: "ab", ID: "c"}, 1<<30) == projection.PartitionOf(runtime.StreamID{Type: "a", ID: "bc"}, 1<<30) {
		t.Error("PartitionOf does not separate (ab, c) from (a, bc)")
	}
	if err := projection.Run(context.Background(), mem, projection.Projection{Name: "x", Handle: func(context.Context, runtime.Record) error { return nil }},
		projection.Partitions(2)); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("RunProjection with Partitions: %v, want ErrInvalid", err)
	}
}

// TestProjectionEventTime: runners report when the last event they
// processed was appended, for lag in seconds.
func TestProjectionEventTime(t *testing.T) {
	m := &readSide{}
	store := instrument.New(memory.New(), m)
	defer store.Close()
	head := appendEvents(t, store, 5)
	var last runtime.Record
	for rec, err := range store.ReadAll(context.Background(), head-1) {
		if err != nil {
			t.Fatal(err)
		}
		last = rec
	}
	ctx, cancel := context.WithCancel(context.Background())
	group := projection.NewGroup(store)
	if err := group.Add(projection.Projection{Name: "p", Handle: func(context.Context, runtime.Record) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()
	if err := group.WaitFor(context.Background(), "p", last.Position); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	p := m.last["p"]
	m.mu.Unlock()
	if p.Position != last.Position || !p.EventTime.Equal(last.Time) {
		t.Errorf("last progress %+v, want position %d and event time %v", p, last.Position, last.Time)
	}
}
