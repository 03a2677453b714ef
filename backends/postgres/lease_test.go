package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/jackc/pgx/v5"
)

// replicas0 opens a store in schema for set-up work.
func replicas0(t *testing.T, schema string) *Store { return openIn(t, schema) }

// TestLeaseLifecycle walks one lease through take, renew, refusal,
// expiry, takeover (new epoch), fenced checkpoints, Fence in a user
// transaction, release and listing.
func TestLeaseLifecycle(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond

	a, err := s.AcquireLease(ctx, "p", "A", ttl)
	if err != nil || a.Holder != "A" || a.Epoch != 1 {
		t.Fatalf("first acquire = %+v, %v; want A at epoch 1", a, err)
	}
	renewed, err := s.AcquireLease(ctx, "p", "A", ttl)
	if err != nil || renewed.Epoch != 1 || !renewed.Expires.After(a.Expires) {
		t.Fatalf("renewal = %+v, %v; want epoch 1 and a later expiry than %v", renewed, err, a.Expires)
	}
	other, err := s.AcquireLease(ctx, "p", "B", ttl)
	if !errors.Is(err, lease.ErrHeld) || other.Holder != "A" || other.Epoch != 1 {
		t.Fatalf("B while A holds = %+v, %v; want ErrLeaseHeld naming A", other, err)
	}
	if err := s.SaveCheckpointLeased(ctx, a, "p", 10); err != nil {
		t.Fatalf("fenced checkpoint by the holder: %v", err)
	}

	time.Sleep(ttl + 50*time.Millisecond)
	b, err := s.AcquireLease(ctx, "p", "B", ttl)
	if err != nil || b.Holder != "B" || b.Epoch != 2 {
		t.Fatalf("B after expiry = %+v, %v; want B at epoch 2", b, err)
	}
	// A, deposed, cannot write; B can.
	if err := s.SaveCheckpointLeased(ctx, a, "p", 99); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("deposed holder's checkpoint: %v, want ErrLeaseLost", err)
	}
	if _, err := s.AcquireLease(ctx, "p", "A", ttl); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("A renewing after takeover: %v, want ErrLeaseHeld", err)
	}
	if err := s.SaveCheckpointLeased(ctx, b, "p", 20); err != nil {
		t.Fatal(err)
	}
	if pos, err := s.LoadCheckpoint(ctx, "p"); err != nil || pos != 20 {
		t.Fatalf("checkpoint = %d, %v; want 20 (the deposed write changed nothing)", pos, err)
	}

	// Fence in a user transaction: passes for B, refuses A.
	fenced := func(l lease.Lease) error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		return s.Fence(lease.NewContext(ctx, l), tx)
	}
	if err := fenced(b); err != nil {
		t.Fatalf("Fence for the holder: %v", err)
	}
	if err := fenced(a); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Fence for the deposed holder: %v, want ErrLeaseLost", err)
	}
	if err := s.Fence(ctx, nil); err != nil {
		t.Fatalf("Fence without a lease in ctx: %v, want nil", err)
	}

	// Release: the next holder, even B again, gets a new epoch at once.
	if err := s.ReleaseLease(ctx, a); err != nil {
		t.Fatalf("release by a deposed holder: %v, want nil (nothing to do)", err)
	}
	if _, err := s.AcquireLease(ctx, "p", "C", ttl); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("C after A's stale release: %v, want ErrLeaseHeld (B still holds)", err)
	}
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	b2, err := s.AcquireLease(ctx, "p", "B", ttl)
	if err != nil || b2.Epoch != 3 {
		t.Fatalf("B after releasing = %+v, %v; want epoch 3", b2, err)
	}
	if err := s.SaveCheckpointLeased(ctx, b, "p", 30); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("checkpoint under the released epoch: %v, want ErrLeaseLost", err)
	}
	leases, err := s.Leases(ctx)
	if err != nil || len(leases) != 1 || leases[0].Name != "p" || leases[0].Holder != "B" || leases[0].Epoch != 3 {
		t.Fatalf("Leases = %+v, %v", leases, err)
	}
	if _, err := s.AcquireLease(ctx, "", "A", ttl); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("empty lease name: %v, want ErrInvalid", err)
	}
}

// TestLeaseRace lets 8 stores (as 8 processes) race for one free lease
// many times: each time exactly one wins, and epochs never repeat.
func TestLeaseRace(t *testing.T) {
	t.Parallel()
	schema := newStore(t).opt.schema
	stores := make([]*Store, 8)
	for i := range stores {
		stores[i] = openIn(t, schema)
	}
	ctx := context.Background()
	var last lease.Lease
	for round := range 20 {
		var wins atomic.Int32
		var won lease.Lease
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := s.AcquireLease(ctx, "race", fmt.Sprintf("h%d-%d", round, i), time.Minute)
				switch {
				case err == nil:
					wins.Add(1)
					mu.Lock()
					won = l
					mu.Unlock()
				case !errors.Is(err, lease.ErrHeld):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || won.Epoch <= last.Epoch {
			t.Fatalf("round %d: %d winners, epoch %d after %d", round, wins.Load(), won.Epoch, last.Epoch)
		}
		if err := stores[0].ReleaseLease(ctx, won); err != nil {
			t.Fatal(err)
		}
		last = won
	}
}

// frozenStore is a store that a test can pause, as a process stopped by a
// long GC pause or a network partition: while frozen, every call blocks.
type frozenStore struct {
	*Store
	mu     sync.Mutex
	thawed chan struct{} // nil: running
}

func (f *frozenStore) freeze() {
	f.mu.Lock()
	f.thawed = make(chan struct{})
	f.mu.Unlock()
}

func (f *frozenStore) thaw() {
	f.mu.Lock()
	close(f.thawed)
	f.thawed = nil
	f.mu.Unlock()
}

func (f *frozenStore) gate() {
	f.mu.Lock()
	ch := f.thawed
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (f *frozenStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (lease.Lease, error) {
	f.gate()
	return f.Store.AcquireLease(ctx, name, holder, ttl)
}

func (f *frozenStore) SaveCheckpointLeased(ctx context.Context, l lease.Lease, name string, pos uint64) error {
	f.gate()
	return f.Store.SaveCheckpointLeased(ctx, l, name, pos)
}

// TestProjectionFailover runs the same exactly-once projection, a read
// model in a table of the store's database whose transactions call Fence,
// in two groups over two connections to one schema, as two replicas
// would. One applies events, the other stands by. Then the active one
// freezes in the middle of Handle (a paused process: it neither renews nor
// writes), the standby takes over within the TTL plus a poll, and when the
// frozen one wakes its fenced write is refused and it stands by; the read
// model ends with every event applied exactly once.
func TestProjectionFailover(t *testing.T) {
	t.Parallel()
	schema := newStore(t).opt.schema
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ttl = 500 * time.Millisecond

	type replica struct {
		store   *frozenStore
		group   *projection.Group
		applied atomic.Int64
		refused atomic.Int64
		done    chan error
	}
	model := pgx.Identifier{schema, "model"}.Sanitize()
	if _, err := replicas0(t, schema).pool.Exec(ctx, `CREATE TABLE `+model+` (id int PRIMARY KEY, position bigint, count bigint, positions bigint[]);
INSERT INTO `+model+` VALUES (1, 0, 0, '{}')`); err != nil {
		t.Fatal(err)
	}
	replicas := make([]*replica, 2)
	for i := range replicas {
		r := &replica{store: &frozenStore{Store: openIn(t, schema)}, done: make(chan error, 1)}
		s := r.store.Store
		r.group = projection.NewGroup(r.store, projection.LeaseTTL(ttl), projection.LeaseHolder(fmt.Sprintf("replica-%d", i)))
		err := r.group.Add(projection.Projection{Name: "count",
			Handle: func(ctx context.Context, rec runtime.Record) error {
				r.store.gate()
				err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
					if err := s.Fence(ctx, tx); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `UPDATE `+model+` SET position = $1, count = count + 1,
						positions = positions || $1 WHERE id = 1 AND position < $1`, int64(rec.Position))
					return err
				})
				if errors.Is(err, lease.ErrLost) {
					r.refused.Add(1)
				} else if err == nil {
					r.applied.Add(1)
				}
				return err
			},
			Position: func(ctx context.Context) (uint64, error) {
				var p int64
				err := s.pool.QueryRow(ctx, `SELECT position FROM `+model+` WHERE id = 1`).Scan(&p)
				return uint64(p), err
			}})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = r
		go func() { r.done <- r.group.Run(ctx) }()
	}
	writer := replicas[0].store.Store
	appendN := func(n int) uint64 {
		var last uint64
		for range n {
			res, err := writer.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "s"},
				Expected: runtime.AnyVersion, Events: storetest.Events(1)})
			if err != nil {
				t.Fatal(err)
			}
			last = res.LastPosition
		}
		return last
	}
	waitAll := func(pos uint64) (who int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for i, r := range replicas {
				st, err := r.group.Status(ctx, "count")
				if err != nil {
					t.Fatal(err)
				}
				if st.State == projection.Running && st.Position >= pos {
					return i
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no replica reached position %d", pos)
		return -1
	}

	head := appendN(20)
	first := waitAll(head)
	other := 1 - first
	// The other replica's Run may not have started yet on a loaded
	// machine: give it time to reach the lease and stand by.
	st, _ := replicas[other].group.Status(ctx, "count")
	for deadline := time.Now().Add(30 * time.Second); st.State == projection.Stopped && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st, _ = replicas[other].group.Status(ctx, "count")
	}
	if st.State != projection.Standby || st.Lease.Holder != fmt.Sprintf("replica-%d", first) {
		t.Fatalf("the other replica is %v with lease %+v; want standby behind replica-%d", st.State, st.Lease, first)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	if err := replicas[other].group.WaitFor(wctx, "count", head); err != nil {
		t.Fatalf("WaitFor on the standby: %v", err)
	}
	wcancel()
	if replicas[other].applied.Load()+replicas[other].refused.Load() != 0 {
		t.Fatalf("standby applied %d events", replicas[other].applied.Load())
	}

	// Freeze the active one (its next Handle, renewal or checkpoint
	// blocks); the standby takes over.
	replicas[first].store.freeze()
	frozeAt := time.Now()
	head = appendN(10)
	if got := waitAll(head); got != other {
		t.Fatalf("replica %d caught up, want the standby %d", got, other)
	}
	took := time.Since(frozeAt)
	t.Logf("takeover after %v (TTL %v)", took, ttl)
	if took > ttl+ttl/5+5*time.Second {
		t.Errorf("takeover took %v, longer than TTL + poll + 5 s slack (for a loaded machine)", took)
	}
	replicas[first].store.thaw()
	// The thawed one must notice and stand by; its writes are refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := replicas[first].group.Status(ctx, "count")
		if st.State == projection.Standby {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thawed replica is %v (%v), want standby", st.State, st.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
	head = appendN(5)
	waitAll(head)
	var pos, count int64
	var positions []int64
	if err := writer.pool.QueryRow(ctx, `SELECT position, count, positions FROM `+model).Scan(&pos, &count, &positions); err != nil {
		t.Fatal(err)
	}
	if pos != int64(head) || count != int64(head) || len(positions) != int(head) {
		t.Fatalf("read model at position %d with %d events applied (%v); want %d, each once", pos, count, positions, head)
	}
	for i, p := range positions {
		if p != int64(i+1) {
			t.Fatalf("read model applied positions %v, want 1..%d in order", positions, head)
		}
	}
	t.Logf("replica %d applied %d, replica %d applied %d; fenced writes refused: %d and %d", first,
		replicas[first].applied.Load(), other, replicas[other].applied.Load(), replicas[first].refused.Load(), replicas[other].refused.Load())
	cancel()
	for _, r := range replicas {
		if err := <-r.done; err != nil {
			t.Fatalf("group: %v", err)
		}
	}
	leases, err := writer.Leases(context.Background())
	if err != nil || len(leases) != 1 || leases[0].Holder != "" {
		t.Fatalf("leases after both stopped = %+v, %v; want one, released", leases, err)
	}
}
