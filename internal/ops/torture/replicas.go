package torture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/readmodel"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/transfer"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReplicaConfig describes a replicas campaign: N replica processes run the
// bank's read side on one PostgreSQL schema while writers append, and the
// active replica is SIGKILLed again and again.
type ReplicaConfig struct {
	// DSN and Schema locate the store (a fresh schema).
	DSN, Schema string
	// Replicas is how many replica processes run at once (3).
	Replicas int
	// Kills is how many times the holder of a lease is SIGKILLed.
	Kills int
	// Writers is how many goroutines of this process request transfers
	// and deposits meanwhile, each one every 20-100 ms (one saga runner
	// must keep up with the transfers: about 60 a second on a loaded
	// 2-vCPU machine).
	Writers int
	// TTL is the replicas' lease TTL (projection.LeaseTTL).
	TTL time.Duration
	// Partitions splits the read model (projection.Partitions); ≤ 1: not
	// split. Kills then target the holder of partition 0.
	Partitions int
	// Seed seeds the kill moments and the writers' choices.
	Seed uint64
	// Command returns the command that runs a replica with spec.
	Command func(spec ReplicaSpec) *exec.Cmd
	// Log, when set, receives one line per kill.
	Log io.Writer
	// Restarts is how many times, between kills, the PostgreSQL server is
	// crashed and restarted with Restart (which returns once the server is
	// back); the replicas and the writers must ride the outages out.
	Restarts int
	Restart  func() error
}

// ReplicaSummary is what a replicas campaign did and verified.
type ReplicaSummary struct {
	Replicas, Kills int
	// Partitions of the read model (1: not split), and how many distinct
	// replicas held them once the work was done.
	Partitions, PartitionHolders int
	// Failovers are the times from each SIGKILL to another replica
	// holding the lease the killed one held.
	Failovers []time.Duration
	// Transfers acknowledged, and how they ended.
	Transfers, Completed, Compensated int
	// Deposits acknowledged (direct, not by the saga).
	Deposits int
	// Steps is the number of saga step executions the replicas reported;
	// Repeats those of a step reported before (re-executed under its
	// idempotency key after a kill).
	Steps, Repeats int
	// Restarts counts server restarts; Retries the writers' commands
	// retried after an ErrUnavailable.
	Restarts, Retries int
	// Applied is how many events the read model applied, by Holders
	// distinct replicas, with epochs never going down along the log.
	Applied, Holders int
	// Events is the size of the log at the end.
	Events   uint64
	Duration time.Duration
}

func (s ReplicaSummary) String() string {
	f := slices.Clone(s.Failovers)
	slices.Sort(f)
	fo := "no failovers"
	if len(f) > 0 {
		fo = fmt.Sprintf("failover min %v median %v max %v", f[0].Round(time.Millisecond),
			f[len(f)/2].Round(time.Millisecond), f[len(f)-1].Round(time.Millisecond))
	}
	return fmt.Sprintf("replicas: %d replicas, read model in %d partition(s) held by %d replica(s) at the end, %d kills of the active replica (%s), %d server restarts (%d commands retried); %d transfers (%d completed, %d compensated) and %d deposits acknowledged; %d saga step executions reported, %d re-executions under their idempotency key; %d events in the log, %d applied to the read model by %d replicas in turn (epochs never down); read model equal to a rebuild, no step twice, nothing acknowledged lost; %s",
		s.Replicas, s.Partitions, s.PartitionHolders, s.Kills, fo, s.Restarts, s.Retries, s.Transfers, s.Completed, s.Compensated, s.Deposits, s.Steps, s.Repeats, s.Events, s.Applied, s.Holders,
		s.Duration.Round(time.Millisecond))
}

// The bank of the campaign: replicaAccounts accounts of four owners, each
// opened with replicaOpening cents, and one closed account (transfers to it
// are refunded).
const (
	replicaAccounts = 8
	replicaOpening  = 100_000
	replicaClosed   = "closed"
)

func replicaAccount(i int) string { return fmt.Sprintf("acct-%d", i) }

// replicaProc is one running replica process.
type replicaProc struct {
	spec   ReplicaSpec
	cmd    *exec.Cmd
	killed bool
	exited chan error // the process's exit, then closed
	ready  chan struct{}
}

// replicaSet starts, kills and collects the replica processes.
type replicaSet struct {
	cfg   ReplicaConfig
	mu    sync.Mutex
	procs []*replicaProc // by slot
	gen   int
	steps map[string]int // step line -> times reported
	nstep int
	fail  error // a replica that ended on its own, or printed nonsense
}

func (rs *replicaSet) err() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.fail
}

func (rs *replicaSet) failed(err error) {
	rs.mu.Lock()
	if rs.fail == nil {
		rs.fail = err
	}
	rs.mu.Unlock()
}

// start starts a replica in slot.
func (rs *replicaSet) start(ctx context.Context, slot int) error {
	rs.mu.Lock()
	rs.gen++
	spec := ReplicaSpec{DSN: rs.cfg.DSN, Schema: rs.cfg.Schema, Name: fmt.Sprintf("replica-%d.%d", slot, rs.gen), TTL: rs.cfg.TTL,
		Partitions: rs.cfg.Partitions}
	rs.mu.Unlock()
	cmd := rs.cfg.Command(spec)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &replicaProc{spec: spec, cmd: cmd, exited: make(chan error, 1), ready: make(chan struct{})}
	rs.mu.Lock()
	for len(rs.procs) <= slot {
		rs.procs = append(rs.procs, nil)
	}
	rs.procs[slot] = p
	rs.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(p.ready)
			case strings.HasPrefix(line, "step "):
				rs.mu.Lock()
				rs.steps[line]++
				rs.nstep++
				rs.mu.Unlock()
			default:
				// A line torn by SIGKILL is not an error.
				if !p.isKilled(rs) {
					rs.failed(fmt.Errorf("%s printed %q", spec.Name, line))
				}
			}
		}
		err := cmd.Wait()
		if !p.isKilled(rs) && ctx.Err() == nil {
			rs.failed(fmt.Errorf("%s exited on its own: %v\n%s", spec.Name, err, stderr.String()))
		}
		p.exited <- err
		close(p.exited)
	}()
	select {
	case <-p.ready:
		return nil
	case err := <-p.exited:
		return fmt.Errorf("%s ended before it was ready: %v\n%s", spec.Name, err, stderr.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *replicaProc) isKilled(rs *replicaSet) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return p.killed
}

// slotOf returns the slot of the replica named holder, -1 if none runs.
func (rs *replicaSet) slotOf(holder string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, p := range rs.procs {
		if p != nil && p.spec.Name == holder && !p.killed {
			return i
		}
	}
	return -1
}

// kill SIGKILLs the replica in slot and waits for it to exit.
func (rs *replicaSet) kill(slot int) {
	rs.mu.Lock()
	p := rs.procs[slot]
	p.killed = true
	rs.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks every replica to stop (SIGTERM) and waits; a replica that
// exits with an error is a failure.
func (rs *replicaSet) stop() error {
	rs.mu.Lock()
	procs := slices.Clone(rs.procs)
	for _, p := range procs {
		p.killed = true // from here on, exiting is expected
	}
	rs.mu.Unlock()
	var errs []error
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case err := <-p.exited:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on SIGTERM: %w", p.spec.Name, err))
			}
		case <-time.After(time.Minute):
			_ = p.cmd.Process.Kill()
			errs = append(errs, fmt.Errorf("%s did not stop within a minute of SIGTERM", p.spec.Name))
		}
	}
	return errors.Join(errs...)
}

// replicaWriters requests transfers and deposits until stop is closed.
type replicaWriters struct {
	mu        sync.Mutex
	retries   int
	transfers map[string]transfer.RequestTransfer // acknowledged, by id
	deposits  map[string]account.Deposit          // acknowledged, by reference
	depositTo map[string]string                   // reference -> account
}

func (w *replicaWriters) run(ctx context.Context, store runtime.Store, n int, seed uint64, stop <-chan struct{}) error {
	requests := transfer.NewRequestRepository(store)
	accounts := account.NewAccountRepository(store)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond):
				}
				from := replicaAccount(rng.IntN(replicaAccounts))
				if rng.IntN(4) == 0 {
					d := account.Deposit{Amount: int64(1 + rng.IntN(500)), Reference: fmt.Sprintf("dep %d-%d", i, k)}
					if err := w.retry(ctx, func() error {
						_, err := accounts.Execute(ctx, from, d, runtime.IdempotencyKey(d.Reference))
						return err
					}); err != nil {
						errs <- fmt.Errorf("deposit %s to %s: %w", d.Reference, from, err)
						return
					}
					w.mu.Lock()
					w.deposits[d.Reference], w.depositTo[d.Reference] = d, from
					w.mu.Unlock()
					continue
				}
				to := replicaAccount(rng.IntN(replicaAccounts))
				if rng.IntN(8) == 0 {
					to = replicaClosed
				}
				if to == from {
					continue
				}
				id := fmt.Sprintf("tr-%d-%d", i, k)
				c := transfer.RequestTransfer{From: from, To: to, Amount: int64(1 + rng.IntN(2000))}
				if err := w.retry(ctx, func() error {
					_, err := requests.Execute(ctx, id, c, runtime.IdempotencyKey("request "+id))
					return err
				}); err != nil {
					errs <- fmt.Errorf("request %s: %w", id, err)
					return
				}
				w.mu.Lock()
				w.transfers[id] = c
				w.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// retry runs a keyed command until it succeeds or fails with an error
// other than ErrUnavailable (the server restarting): the key makes a
// command whose first answer was lost return its first result.
func (w *replicaWriters) retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if !errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		w.mu.Lock()
		w.retries++
		w.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// sagaLease is the lease of the transfer saga.
var sagaLease = saga.ProjectionName(transfer.TransferSagaName)

// RunReplicas runs a replicas campaign: it opens the bank on a fresh
// schema, starts cfg.Replicas replica processes (ReplicaMain), lets writers
// request transfers and deposits, and cfg.Kills times SIGKILLs the process
// holding the read model's lease or the saga's (alternately), starting a
// new replica in its place and timing how long until another holds the
// lease. Then it lets the work finish, stops the replicas and verifies:
// the read model equals the bank's readmodel.Balances rebuilt from
// position 0 and has applied the last account event; every acknowledged transfer ended
// exactly once (completed: one withdrawal and one deposit; compensated:
// one withdrawal and one refund, or nothing when the withdrawal was
// refused), each money movement of a saga step recorded once under its
// idempotency key; every acknowledged deposit is in the log once; the
// account balances are the opening balances plus the deposits; and the
// store's own verification passes.
func RunReplicas(ctx context.Context, cfg ReplicaConfig) (ReplicaSummary, error) {
	begin := time.Now()
	sum := ReplicaSummary{Replicas: cfg.Replicas, Partitions: max(cfg.Partitions, 1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	store, err := postgres.Open(ctx, cfg.DSN, postgres.WithSchema(cfg.Schema), postgres.WithMaxConns(16))
	if err != nil {
		return sum, err
	}
	defer store.Close()
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return sum, err
	}
	defer pool.Close()
	model := newPGBalances(store, pool, cfg.Schema, cfg.Partitions)
	if err := model.create(ctx); err != nil {
		return sum, fmt.Errorf("creating the read model: %w", err)
	}
	accounts := account.NewAccountRepository(store)
	for i := range replicaAccounts {
		a := replicaAccount(i)
		if _, err := accounts.Execute(ctx, a, account.OpenAccount{Owner: fmt.Sprintf("owner-%d", i%4)}); err != nil {
			return sum, err
		}
		if _, err := accounts.Execute(ctx, a, account.Deposit{Amount: replicaOpening, Reference: "opening"}); err != nil {
			return sum, err
		}
	}
	if _, err := accounts.Execute(ctx, replicaClosed, account.OpenAccount{Owner: "gone"}); err != nil {
		return sum, err
	}
	if _, err := accounts.Execute(ctx, replicaClosed, account.CloseAccount{Reason: "torture"}); err != nil {
		return sum, err
	}

	set := &replicaSet{cfg: cfg, steps: map[string]int{}}
	for slot := range cfg.Replicas {
		if err := set.start(ctx, slot); err != nil {
			return sum, err
		}
	}
	defer func() {
		set.mu.Lock()
		procs := slices.Clone(set.procs)
		set.mu.Unlock()
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
	}()

	w := &replicaWriters{transfers: map[string]transfer.RequestTransfer{}, deposits: map[string]account.Deposit{},
		depositTo: map[string]string{}}
	stopWriting := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() { writeErr <- w.run(ctx, store, cfg.Writers, cfg.Seed, stopWriting) }()
	writing := true
	defer func() {
		if writing {
			close(stopWriting)
			<-writeErr
		}
	}()

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5e11ca))
	for k := range cfg.Kills {
		pause := time.Duration(300+rng.IntN(900)) * time.Millisecond
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case err := <-writeErr:
			writing = false
			return sum, fmt.Errorf("writers: %w", err)
		case <-time.After(pause):
		}
		if err := set.err(); err != nil {
			return sum, err
		}
		if cfg.Restarts > 0 && (k+1)%max(1, cfg.Kills/(cfg.Restarts+1)) == 0 && sum.Restarts < cfg.Restarts {
			if err := cfg.Restart(); err != nil {
				return sum, fmt.Errorf("restarting the server: %w", err)
			}
			sum.Restarts++
			if cfg.Log != nil {
				fmt.Fprintf(cfg.Log, "server restart %d before kill %d\n", sum.Restarts, k+1)
			}
			// Leases that ran out during the outage settle before the next
			// kill, so that its takeover time measures a failover.
			time.Sleep(2 * cfg.TTL)
		}
		name := model.leaseName()
		if k%2 == 1 {
			name = sagaLease
		}
		held, slot, err := currentHolder(ctx, store, set, name)
		if err != nil {
			return sum, err
		}
		set.kill(slot)
		killed := time.Now()
		sum.Kills++
		if err := set.start(ctx, slot); err != nil {
			return sum, err
		}
		next, err := waitTakeover(ctx, store, name, held)
		if err != nil {
			return sum, err
		}
		d := time.Since(killed)
		sum.Failovers = append(sum.Failovers, d)
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "kill %d: %s held %s (epoch %d); %s took it over (epoch %d) after %v\n",
				k+1, held.Holder, name, held.Epoch, next.Holder, next.Epoch, d.Round(time.Millisecond))
		}
	}
	// Let the writers run a little after the last kill, then stop them.
	time.Sleep(300 * time.Millisecond)
	close(stopWriting)
	writing = false
	if err := <-writeErr; err != nil {
		return sum, fmt.Errorf("writers: %w", err)
	}
	if err := settleReplicas(ctx, store, model, w, set); err != nil {
		return sum, err
	}
	leases, err := store.Leases(ctx)
	if err != nil {
		return sum, err
	}
	holders := map[string]bool{}
	for _, l := range leases {
		if strings.HasPrefix(l.Name, BalancesProjectionName) && l.Holder != "" {
			holders[l.Holder] = true
		}
	}
	sum.PartitionHolders = len(holders)
	if err := set.stop(); err != nil {
		return sum, err
	}
	if err := verifyReplicas(ctx, store, model, w, &sum); err != nil {
		return sum, err
	}
	sum.Retries = w.retries
	set.mu.Lock()
	sum.Steps = set.nstep
	for _, n := range set.steps {
		sum.Repeats += n - 1
	}
	set.mu.Unlock()
	sum.Duration = time.Since(begin)
	return sum, nil
}

// currentHolder waits until a running replica holds lease name and returns
// the lease and the replica's slot.
func currentHolder(ctx context.Context, store *postgres.Store, set *replicaSet, name string) (lease.Lease, int, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		leases, err := store.Leases(ctx)
		if err != nil && !errors.Is(err, runtime.ErrUnavailable) {
			return lease.Lease{}, 0, err
		}
		for _, l := range leases {
			if l.Name == name && l.Holder != "" {
				if slot := set.slotOf(l.Holder); slot >= 0 {
					return l, slot, nil
				}
			}
		}
		if err := set.err(); err != nil {
			return lease.Lease{}, 0, err
		}
		if time.Now().After(deadline) {
			return lease.Lease{}, 0, fmt.Errorf("no running replica holds lease %s after a minute (leases %+v)", name, leases)
		}
		select {
		case <-ctx.Done():
			return lease.Lease{}, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitTakeover waits until another holder holds lease name at a higher
// epoch than held.
func waitTakeover(ctx context.Context, store *postgres.Store, name string, held lease.Lease) (lease.Lease, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		leases, err := store.Leases(ctx)
		if err != nil && !errors.Is(err, runtime.ErrUnavailable) {
			return lease.Lease{}, err
		}
		for _, l := range leases {
			if l.Name == name && l.Holder != "" && l.Holder != held.Holder {
				if l.Epoch <= held.Epoch {
					return l, fmt.Errorf("lease %s passed from %s (epoch %d) to %s at epoch %d: the epoch must grow",
						name, held.Holder, held.Epoch, l.Holder, l.Epoch)
				}
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return lease.Lease{}, fmt.Errorf("nobody took lease %s over within a minute of killing %s", name, held.Holder)
		}
		select {
		case <-ctx.Done():
			return lease.Lease{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lastAccountEvents returns the position of the last account event of
// each of parts partitions: where the read model, which commits only the
// positions it applies, ends.
func lastAccountEvents(ctx context.Context, store runtime.Store, parts int) ([]uint64, error) {
	last := make([]uint64, max(parts, 1))
	for rec, err := range store.ReadAll(ctx, 0) {
		if err != nil {
			return nil, err
		}
		if rec.Stream.Type == account.AccountStreamType {
			last[projection.PartitionOf(rec.Stream, len(last))] = rec.Position
		}
	}
	return last, nil
}

// caughtUp reports whether every partition of the read model has applied
// its last account event, and the sum of the partitions' positions (for
// progress).
func caughtUp(ctx context.Context, store runtime.Store, model *pgBalances) (bool, uint64, error) {
	last, err := lastAccountEvents(ctx, store, model.parts)
	if err != nil {
		return false, 0, err
	}
	pos, err := model.positions(ctx)
	if err != nil {
		return false, 0, err
	}
	var sum uint64
	done := len(pos) == len(last)
	for i, p := range pos {
		sum += p
		if i < len(last) && p != last[i] {
			done = false
		}
	}
	return done, sum, nil
}

// settleReplicas waits until every acknowledged transfer's saga has ended
// and the read model has applied the last account event.
func settleReplicas(ctx context.Context, store *postgres.Store, model *pgBalances, w *replicaWriters, set *replicaSet) error {
	transferSaga := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: account.NewAccountRepository(store)})
	w.mu.Lock()
	ids := make([]string, 0, len(w.transfers))
	for id := range w.transfers {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	slices.Sort(ids)
	// Fail only when nothing moves for a minute (the saga's checkpoint,
	// the transfers, the read model): a backlog left by the kills takes as
	// long as it takes.
	deadline := time.Now().Add(time.Minute)
	pending := ids
	var modelPos, sagaPos uint64
	for {
		if p, err := store.LoadCheckpoint(ctx, sagaLease); err == nil && p > sagaPos {
			sagaPos, deadline = p, time.Now().Add(time.Minute)
		}
		// Look at the pending transfers in order, stopping at the first
		// unfinished one, so each finished one is loaded about once.
		for len(pending) > 0 {
			in, err := saga.Load(ctx, store, transferSaga, pending[0])
			if err != nil {
				return err
			}
			if !in.Status.Final() {
				break
			}
			pending = pending[1:]
			deadline = time.Now().Add(time.Minute)
		}
		if len(pending) == 0 {
			done, pos, err := caughtUp(ctx, store, model)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			if pos > modelPos {
				modelPos, deadline = pos, time.Now().Add(time.Minute)
			}
		}
		if err := set.err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing moved for a minute: %d transfers unfinished (first %v), saga checkpoint %d, read model at %d",
				len(pending), pending[:min(5, len(pending))], sagaPos, modelPos)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// movement is a money movement found in an account stream.
type movement struct {
	account, kind, reference string
}

// verifyReplicas checks the store and the read model after the campaign.
func verifyReplicas(ctx context.Context, store *postgres.Store, model *pgBalances, w *replicaWriters, sum *ReplicaSummary) error {
	var problems []string
	bad := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	accounts := account.NewAccountRepository(store)
	transferSaga := transfer.NewTransferSaga(transfer.TransferSagaRepositories{Account: accounts})
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	sum.Events = head

	// Every money movement, at most once each.
	type found struct {
		version  uint64
		amount   int64
		metadata map[string]string
	}
	moves := map[movement]found{}
	names := []string{replicaClosed}
	for i := range replicaAccounts {
		names = append(names, replicaAccount(i))
	}
	balance := map[string]int64{}
	for _, a := range names {
		for env, err := range accounts.Events(ctx, a, 0) {
			if err != nil {
				return err
			}
			var m movement
			var amount int64
			switch e := env.Event.(type) {
			case account.Deposited:
				m, amount = movement{a, "deposit", e.Reference}, e.Amount
				balance[a] += e.Amount
			case account.Withdrawn:
				m, amount = movement{a, "withdraw", e.Reference}, e.Amount
				balance[a] -= e.Amount
			default:
				continue
			}
			if old, dup := moves[m]; dup {
				bad("%s %s %q twice: versions %d and %d", a, m.kind, m.reference, old.version, env.Version)
			}
			moves[m] = found{version: env.Version, amount: amount, metadata: env.Metadata}
		}
	}
	want := int64(0)
	for i := range replicaAccounts {
		delete(moves, movement{replicaAccount(i), "deposit", "opening"})
		want += replicaOpening
	}

	// Acknowledged deposits: each once, on its account.
	w.mu.Lock()
	defer w.mu.Unlock()
	sum.Deposits = len(w.deposits)
	for ref, d := range w.deposits {
		m := movement{w.depositTo[ref], "deposit", ref}
		if f, ok := moves[m]; !ok || f.amount != d.Amount {
			bad("acknowledged deposit %q of %d to %s: found %v (%+v)", ref, d.Amount, m.account, ok, f)
		}
		delete(moves, m)
		want += d.Amount
	}

	// Acknowledged transfers: each ended, with exactly its movements, each
	// under its step's idempotency key.
	sum.Transfers = len(w.transfers)
	expect := func(id string, m movement, amount int64, seq uint64, comp bool) {
		f, ok := moves[m]
		if !ok {
			bad("%s: no %s %q on %s", id, m.kind, m.reference, m.account)
			return
		}
		delete(moves, m)
		if f.amount != amount {
			bad("%s: %s of %d, want %d", id, m.kind, f.amount, amount)
		}
		if f.metadata[saga.MetadataInstance] != id {
			bad("%s: %s %q carries saga metadata %v", id, m.kind, m.reference, f.metadata)
		}
		rec, err := store.LoadIdempotency(ctx, saga.StepKey(transfer.TransferSagaName, id, seq, comp))
		if err != nil || rec.Stream.ID != m.account || rec.Version != f.version {
			bad("%s: key of step %d (compensation %v): %+v, %v; the event is %s v%d", id, seq, comp, rec, err, m.account, f.version)
		}
	}
	for id, c := range w.transfers {
		if r, _, err := transfer.NewRequestRepository(store).Load(ctx, id); err != nil || !r.Requested {
			bad("%s: acknowledged request not found: %v", id, err)
		}
		in, err := saga.Load(ctx, store, transferSaga, id)
		if err != nil {
			return err
		}
		withdraw := movement{c.From, "withdraw", "transfer " + id}
		deposit := movement{c.To, "deposit", "transfer " + id}
		refund := movement{c.From, "deposit", "refund " + id}
		switch in.Status {
		case saga.Completed:
			sum.Completed++
			expect(id, withdraw, c.Amount, 1, false)
			expect(id, deposit, c.Amount, 2, false)
		case saga.Compensated:
			sum.Compensated++
			if _, ok := moves[withdraw]; ok {
				expect(id, withdraw, c.Amount, 1, false)
				expect(id, refund, c.Amount, 1, true)
			}
			if _, ok := moves[deposit]; ok {
				bad("%s: compensated, yet deposited to %s", id, c.To)
			}
		default:
			bad("%s: saga %v (%s), want completed or compensated", id, in.Status, in.Reason)
		}
	}
	for m, f := range moves {
		bad("unexpected %s %q on %s (v%d, metadata %v)", m.kind, m.reference, m.account, f.version, f.metadata)
	}
	total := int64(0)
	for _, a := range names {
		acc, _, err := accounts.Load(ctx, a)
		if err != nil {
			return err
		}
		if acc.Balance != balance[a] {
			bad("%s: loaded balance %d, events sum to %d", a, acc.Balance, balance[a])
		}
		total += acc.Balance
	}
	if total != want {
		bad("money: accounts hold %d in all, want %d (openings plus acknowledged deposits)", total, want)
	}

	// The read model: each partition at its last account event, and equal to the bank's own read model
	// rebuilt from position 0.
	last, err := lastAccountEvents(ctx, store, model.parts)
	if err != nil {
		return err
	}
	pos, err := model.positions(ctx)
	if err != nil {
		return err
	}
	if fmt.Sprint(pos) != fmt.Sprint(last) {
		bad("read model's partitions at positions %v, the last account events of the partitions at %v", pos, last)
	}
	got, err := model.byOwner(ctx)
	if err != nil {
		return err
	}
	rebuilt := &readmodel.Balances{}
	g := projection.NewGroup(store, projection.WithoutLease())
	if err := g.Add(rebuilt.Projection()); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(rctx) }()
	err = g.WaitFor(ctx, readmodel.BalancesProjectionName, head)
	stop()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("rebuilding the read model: %w", err)
	}
	var wantRows []ownerRow
	for _, o := range rebuilt.ByOwner() {
		wantRows = append(wantRows, ownerRow{Owner: o.Owner, Balance: o.Balance, Open: o.Open, Closed: o.Closed})
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRows) {
		bad("read model %v, rebuilt from position 0: %v", got, wantRows)
	}
	applied, holders, problem, err := model.epochCheck(ctx)
	if err != nil {
		return err
	}
	if problem != "" {
		bad("read model: %s", problem)
	}
	sum.Applied, sum.Holders = applied, holders

	report, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	if !report.OK() {
		bad("store verification: %+v", report)
	}
	if len(problems) > 0 {
		return fmt.Errorf("replicas campaign: %d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}
