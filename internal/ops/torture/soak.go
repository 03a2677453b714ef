package torture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// SoakConfig configures a load and soak run (RunSoak): many writers
// executing commands through the generated bank repository and appending
// through runtime.Store directly, on a Pebble store, while a
// projection.Group runs four projections (two at-least-once, two
// exactly-once) and the process's memory is sampled.
type SoakConfig struct {
	// Dir is the Pebble store directory (created if missing).
	Dir string
	// Writers is the number of writer goroutines (default 64).
	Writers int
	// Shared is the number of accounts all writers deposit into (default 16).
	Shared int
	// Duration stops the writers after this long (0: no time limit).
	Duration time.Duration
	// OpsPerWriter stops each writer after this many operations (0: no
	// limit). At least one of Duration and OpsPerWriter must be set.
	OpsPerWriter int
	// SampleEvery takes a memory sample at this interval (0: none by time).
	SampleEvery time.Duration
	// SampleOps takes a memory sample every SampleOps operations, counted
	// over all writers (0: none by count).
	SampleOps int
	// WarmUp is the fraction of the samples, from the start, that the
	// memory checks ignore (default 0.2; at least one sample is kept).
	WarmUp float64
	// MemFactor bounds HeapInuse of the last sample by MemFactor times the
	// median HeapInuse after warm-up (default 1.5).
	MemFactor float64
	// GoroutineSlack bounds the spread (max - min) of goroutine counts
	// after warm-up (default 16).
	GoroutineSlack int
	// Seed seeds the writers' choices.
	Seed uint64
	// Log, when set, gets one line per memory sample.
	Log io.Writer
}

// MemSample is one reading of the process's memory, taken right after a
// forced garbage collection.
type MemSample struct {
	Elapsed   time.Duration
	Ops       uint64 // operations acknowledged so far
	HeapAlloc uint64
	HeapInuse uint64
	Sys       uint64
	RSS       uint64 // resident set size from /proc/self/statm, 0 where unavailable
	// Goroutines counts the process's goroutines other than the running
	// writers, so that writers stopping at the end do not count as a change.
	Goroutines int
}

// SoakResult are the figures of a soak run.
type SoakResult struct {
	// Load phase: operations and events acknowledged by the writers.
	Ops, Executes, KeyRepeats, RawAppends, Events uint64
	// LoadTime is how long the writers ran.
	LoadTime time.Duration
	// Head is the store's head after the writers stopped.
	Head uint64
	// Lag is each projection's lag (head - position) when the writers
	// stopped, by name; CatchUp is how long WaitFor(head) then took for
	// all of them.
	Lag     map[string]uint64
	CatchUp time.Duration
	// Handled is each projection's Handle calls.
	Handled map[string]uint64
	// Samples are all memory samples during the load; Warm is the index of
	// the first one after warm-up.
	Samples []MemSample
	Warm    int
	// DiskBytes is the store's size on disk at the end.
	DiskBytes int64
}

// Stat returns the minimum, median and maximum of f over the samples after
// warm-up.
func (r SoakResult) Stat(f func(MemSample) uint64) (lo, med, hi uint64) {
	var vs []uint64
	for _, s := range r.Samples[r.Warm:] {
		vs = append(vs, f(s))
	}
	if len(vs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(vs)
	return vs[0], vs[len(vs)/2], vs[len(vs)-1]
}

// String summarises the run on a few lines.
func (r SoakResult) String() string {
	mib := func(v uint64) string { return fmt.Sprintf("%.1f", float64(v)/(1<<20)) }
	a0, a1, a2 := r.Stat(func(s MemSample) uint64 { return s.HeapAlloc })
	i0, i1, i2 := r.Stat(func(s MemSample) uint64 { return s.HeapInuse })
	r0, r1, r2 := r.Stat(func(s MemSample) uint64 { return s.RSS })
	g0, g1, g2 := r.Stat(func(s MemSample) uint64 { return uint64(s.Goroutines) })
	rate := 0.0
	if r.LoadTime > 0 {
		rate = float64(r.Events) / r.LoadTime.Seconds()
	}
	return fmt.Sprintf("soak: %d ops (%d executes, %d key repeats, %d raw appends), %d events in %v: %.0f events/s, %.0f ops/s\n"+
		"soak: %d samples, %d after warm-up: HeapAlloc MiB min/median/max %s/%s/%s, HeapInuse %s/%s/%s, RSS %s/%s/%s, goroutines besides writers %d/%d/%d, last HeapInuse %s\n"+
		"soak: head %d, lag at stop %v, caught up in %v; handled %v; disk %d MiB",
		r.Ops, r.Executes, r.KeyRepeats, r.RawAppends, r.Events, r.LoadTime.Round(time.Millisecond), rate, float64(r.Ops)/max(r.LoadTime.Seconds(), 1e-9),
		len(r.Samples), len(r.Samples)-r.Warm, mib(a0), mib(a1), mib(a2), mib(i0), mib(i1), mib(i2), mib(r0), mib(r1), mib(r2), g0, g1, g2, mib(r.Samples[len(r.Samples)-1].HeapInuse),
		r.Head, r.Lag, r.CatchUp.Round(time.Millisecond), r.Handled, r.DiskBytes>>20)
}

// Soak projection names.
const (
	soakBalances = "soak-balances" // at-least-once: balance per account
	soakNames    = "soak-names"    // at-least-once: records per wire name
	soakLedger   = "soak-ledger"   // exactly-once: money in minus money out
	soakStreams  = "soak-streams"  // exactly-once: last version per stream, contiguity checked
	soakRawType  = "soakraw"
	soakRawEvent = "soak.raw"
)

// soakModel holds the four read models.
type soakModel struct {
	mu       sync.Mutex
	balances map[string]balanceRow // at-least-once: upsert by version
	names    map[string]uint64
	namesMax uint64 // highest position seen by soak-names
	ledger   int64
	ledgerAt uint64
	versions map[runtime.StreamID]uint64
	streamAt uint64
}

type balanceRow struct {
	version uint64
	balance int64
}

func (m *soakModel) projections() []projection.Projection {
	acctNames := account.AccountEvents().Names()
	delta := func(rec runtime.Record) (int64, error) {
		if rec.Stream.Type != account.AccountStreamType {
			return 0, nil
		}
		e, err := account.AccountEvents().Decode(rec.Name, rec.Schema, rec.Data)
		switch e := e.(type) {
		case account.Deposited:
			return e.Amount, err
		case account.Withdrawn:
			return -e.Amount, err
		}
		return 0, err
	}
	return []projection.Projection{
		{Name: soakBalances, Events: acctNames, Handle: func(_ context.Context, rec runtime.Record) error {
			d, err := delta(rec)
			if err != nil {
				return err
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			row := m.balances[rec.Stream.ID]
			if rec.Version <= row.version {
				return nil // a replay: already applied
			}
			m.balances[rec.Stream.ID] = balanceRow{version: rec.Version, balance: row.balance + d}
			return nil
		}},
		{Name: soakNames, Handle: func(_ context.Context, rec runtime.Record) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if rec.Position <= m.namesMax {
				return nil
			}
			m.namesMax = rec.Position
			m.names[rec.Name]++
			return nil
		}},
		{Name: soakLedger, Events: acctNames, Handle: func(_ context.Context, rec runtime.Record) error {
			d, err := delta(rec)
			if err != nil {
				return err
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if rec.Position <= m.ledgerAt {
				return fmt.Errorf("soak ledger: position %d handled again (committed %d)", rec.Position, m.ledgerAt)
			}
			m.ledger += d
			m.ledgerAt = rec.Position
			return nil
		}, Position: func(context.Context) (uint64, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.ledgerAt, nil
		}, Reset: func(context.Context) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.ledger, m.ledgerAt = 0, 0
			return nil
		}},
		{Name: soakStreams, Handle: func(_ context.Context, rec runtime.Record) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if last := m.versions[rec.Stream]; rec.Version != last+1 || rec.Position <= m.streamAt {
				return fmt.Errorf("soak streams: %s version %d at position %d after version %d at position %d", rec.Stream, rec.Version, rec.Position, last, m.streamAt)
			}
			m.versions[rec.Stream] = rec.Version
			m.streamAt = rec.Position
			return nil
		}, Position: func(context.Context) (uint64, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.streamAt, nil
		}},
	}
}

// soakWriter is one writer goroutine's state.
type soakWriter struct {
	n       int
	rng     *rand.Rand
	store   runtime.Store
	repo    *account.AccountRepository
	own     string // its own account, which only it withdraws from
	balance int64  // own account's balance
	raw     runtime.StreamID
	rawVer  uint64
	keys    []keyed // ring of recent idempotency keys and the version they returned
	seq     int

	ops, executes, repeats, raws, events uint64
}

type keyed struct {
	acct, key string
	version   uint64
}

func (w *soakWriter) op(ctx context.Context, shared int) error {
	w.seq++
	r := w.rng.IntN(100)
	switch {
	case r < 40: // deposit into its own account, every fourth with a key
		var opts []runtime.ExecOption
		key := ""
		if w.seq%4 == 0 {
			key = "w" + strconv.Itoa(w.n) + "-" + strconv.Itoa(w.seq)
			opts = append(opts, runtime.IdempotencyKey(key))
		}
		amt := int64(1 + w.rng.IntN(100))
		v, err := w.repo.Execute(ctx, w.own, account.Deposit{Amount: amt, Reference: "soak"}, opts...)
		if err != nil {
			return fmt.Errorf("deposit %d into %s: %w", amt, w.own, err)
		}
		w.balance += amt
		w.remember(w.own, key, v)
	case r < 55: // withdraw from its own account
		if w.balance == 0 {
			return w.op(ctx, shared)
		}
		amt := 1 + w.rng.Int64N(w.balance)
		v, err := w.repo.Execute(ctx, w.own, account.Withdraw{Amount: amt, Reference: "soak"})
		if err != nil {
			return fmt.Errorf("withdraw %d from %s: %w", amt, w.own, err)
		}
		w.balance -= amt
		w.remember(w.own, "", v)
	case r < 75: // deposit into a shared account: writers contend
		acct := "shared" + strconv.Itoa(w.rng.IntN(shared))
		if _, err := w.repo.Execute(ctx, acct, account.Deposit{Amount: 1, Reference: "soak"}); err != nil {
			return fmt.Errorf("deposit into %s: %w", acct, err)
		}
	case r < 95: // append directly to its own raw stream at the exact version
		n := 1 + w.rng.IntN(4)
		evs := make([]runtime.EventData, n)
		for i := range evs {
			evs[i] = runtime.EventData{Name: soakRawEvent, Schema: 1, Metadata: map[string]string{"writer": strconv.Itoa(w.n)},
				Data: fmt.Appendf(nil, "w%d/%d/%d", w.n, w.seq, i)}
		}
		res, err := w.store.Append(ctx, runtime.AppendRequest{Stream: w.raw, Expected: w.rawVer, Events: evs})
		if err != nil {
			return fmt.Errorf("append to %s at %d: %w", w.raw, w.rawVer, err)
		}
		if res.FirstVersion != w.rawVer+1 || res.LastVersion != w.rawVer+uint64(n) || res.LastPosition-res.FirstPosition != uint64(n-1) {
			return fmt.Errorf("append to %s at %d: result %+v for %d events", w.raw, w.rawVer, res, n)
		}
		w.rawVer = res.LastVersion
		w.raws++
		w.events += uint64(n)
		w.ops++
		return nil
	default: // repeat a key: must return the first version and write nothing
		var ks []keyed
		for _, k := range w.keys {
			if k.key != "" {
				ks = append(ks, k)
			}
		}
		if len(ks) == 0 {
			return w.op(ctx, shared)
		}
		k := ks[w.rng.IntN(len(ks))]
		v, err := w.repo.Execute(ctx, k.acct, account.Deposit{Amount: 1_000_000, Reference: "repeat"}, runtime.IdempotencyKey(k.key))
		if err != nil {
			return fmt.Errorf("repeating key %s on %s: %w", k.key, k.acct, err)
		}
		if v != k.version {
			return fmt.Errorf("repeating key %s on %s returned version %d, first %d", k.key, k.acct, v, k.version)
		}
		w.repeats++
		w.ops++
		return nil
	}
	w.executes++
	w.events++
	w.ops++
	return nil
}

func (w *soakWriter) remember(acct, key string, v uint64) {
	if key == "" {
		return
	}
	if len(w.keys) < 32 {
		w.keys = append(w.keys, keyed{acct, key, v})
		return
	}
	w.keys[w.seq%32] = keyed{acct, key, v}
}

// RunSoak runs the load and soak described by cfg and checks, at the end:
// no operation failed; the events the writers acknowledged are exactly the
// log (Stats.Events and Head); every projection catches up with the head
// (WaitFor) without failing; the read models agree with the store (each
// account's balance and version, each stream's version, the total money,
// the count of records per name); HeapInuse of the last sample is within
// MemFactor of the median after warm-up; and the goroutine count after
// warm-up stays within GoroutineSlack. It returns the figures and the first
// violated check.
func RunSoak(ctx context.Context, cfg SoakConfig) (SoakResult, error) {
	if cfg.Writers <= 0 {
		cfg.Writers = 64
	}
	if cfg.Shared <= 0 {
		cfg.Shared = 16
	}
	if cfg.WarmUp <= 0 {
		cfg.WarmUp = 0.2
	}
	if cfg.MemFactor <= 0 {
		cfg.MemFactor = 1.5
	}
	if cfg.GoroutineSlack <= 0 {
		cfg.GoroutineSlack = 16
	}
	var res SoakResult
	if cfg.Duration <= 0 && cfg.OpsPerWriter <= 0 {
		return res, fmt.Errorf("soak: %w: neither a duration nor a number of operations", runtime.ErrInvalid)
	}
	store, err := pebble.Open(cfg.Dir)
	if err != nil {
		return res, fmt.Errorf("soak: open %s: %w", cfg.Dir, err)
	}
	defer store.Close()

	repo := account.NewAccountRepository(store, runtime.WithRetries(1000), runtime.WithSnapshotEvery(64))
	model := &soakModel{balances: map[string]balanceRow{}, names: map[string]uint64{}, versions: map[runtime.StreamID]uint64{}}
	group := projection.NewGroup(store, projection.CheckpointEvery(50, 100*time.Millisecond))
	for _, p := range model.projections() {
		if err := group.Add(p); err != nil {
			return res, fmt.Errorf("soak: %w", err)
		}
	}
	pctx, stopProjections := context.WithCancel(ctx)
	defer stopProjections()
	groupDone := make(chan error, 1)
	go func() { groupDone <- group.Run(pctx) }()

	// Open the accounts.
	var opened uint64
	for i := range cfg.Shared {
		if _, err := repo.Execute(ctx, "shared"+strconv.Itoa(i), account.OpenAccount{Owner: "soak"}); err != nil {
			return res, fmt.Errorf("soak: open shared account %d: %w", i, err)
		}
		opened++
	}
	seed := cfg.Seed
	writers := make([]*soakWriter, cfg.Writers)
	for i := range writers {
		w := &soakWriter{n: i, rng: rand.New(rand.NewPCG(seed, uint64(i))), store: store, repo: repo,
			own: "w" + strconv.Itoa(i), raw: runtime.StreamID{Type: soakRawType, ID: "w" + strconv.Itoa(i)}}
		if _, err := repo.Execute(ctx, w.own, account.OpenAccount{Owner: w.own}); err != nil {
			return res, fmt.Errorf("soak: open account %s: %w", w.own, err)
		}
		opened++
		writers[i] = w
	}

	// Load, with sampling.
	start := time.Now()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var ops atomic.Uint64
	var running atomic.Int64 // writers started and not yet returned
	running.Store(int64(len(writers)))
	sampleNow := make(chan struct{}, 1)
	var samples []MemSample
	sample := func() {
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		s := MemSample{Elapsed: time.Since(start), Ops: ops.Load(), HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, Sys: ms.Sys,
			RSS: rss(), Goroutines: goruntime.NumGoroutine() - int(running.Load())}
		samples = append(samples, s)
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "sample %3d at %8v: %9d ops, HeapAlloc %6.1f MiB, HeapInuse %6.1f MiB, Sys %6.1f MiB, RSS %6.1f MiB, %d goroutines besides writers\n",
				len(samples), s.Elapsed.Round(time.Second), s.Ops, float64(s.HeapAlloc)/(1<<20), float64(s.HeapInuse)/(1<<20), float64(s.Sys)/(1<<20), float64(s.RSS)/(1<<20), s.Goroutines)
		}
	}
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		var tick, deadline <-chan time.Time
		if cfg.Duration > 0 {
			t := time.NewTimer(cfg.Duration)
			defer t.Stop()
			deadline = t.C
		}
		if cfg.SampleEvery > 0 {
			t := time.NewTicker(cfg.SampleEvery)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-deadline:
				sample() // the last sample, taken under load
				stopLoad()
				return
			case <-lctx.Done():
				sample() // every writer finished (or one failed)
				return
			case <-tick:
				sample()
			case <-sampleNow:
				sample()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(writers))
	var finished atomic.Int64
	for i, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer running.Add(-1)
			defer func() {
				if finished.Add(1) == int64(len(writers)) {
					stopLoad() // the last writer to finish ends the load
				}
			}()
			for cfg.OpsPerWriter <= 0 || int(w.ops) < cfg.OpsPerWriter {
				if lctx.Err() != nil {
					return
				}
				// The operation runs on ctx, not lctx: stopping the load
				// lets it finish, so that every event written is counted.
				if err := w.op(ctx, cfg.Shared); err != nil {
					errs[i] = fmt.Errorf("soak writer %d: %w", w.n, err)
					stopLoad()
					return
				}
				if n := ops.Add(1); cfg.SampleOps > 0 && n%uint64(cfg.SampleOps) == 0 {
					select {
					case sampleNow <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	wg.Wait()
	<-samplerDone
	res.LoadTime = time.Since(start)
	res.Samples = samples
	res.Warm = min(int(float64(len(samples))*cfg.WarmUp), len(samples)-1)
	for _, w := range writers {
		res.Ops += w.ops
		res.Executes += w.executes
		res.KeyRepeats += w.repeats
		res.RawAppends += w.raws
		res.Events += w.events
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("soak: interrupted: %w", err)
	}

	// Projections catch up.
	if res.Head, err = store.Head(ctx); err != nil {
		return res, fmt.Errorf("soak: head: %w", err)
	}
	res.Lag, res.Handled = map[string]uint64{}, map[string]uint64{}
	sts, err := group.Statuses(ctx)
	if err != nil {
		return res, fmt.Errorf("soak: statuses: %w", err)
	}
	for _, st := range sts {
		res.Lag[st.Name] = res.Head - min(st.Position, res.Head)
	}
	caught := time.Now()
	for _, st := range sts {
		if err := group.WaitFor(ctx, st.Name, res.Head); err != nil {
			return res, fmt.Errorf("soak: projection %s catching up with %d: %w", st.Name, res.Head, err)
		}
	}
	res.CatchUp = time.Since(caught)
	if sts, err = group.Statuses(ctx); err != nil {
		return res, fmt.Errorf("soak: statuses: %w", err)
	}
	for _, st := range sts {
		res.Handled[st.Name] = st.Handled
	}
	stopProjections()
	if err := <-groupDone; err != nil {
		return res, fmt.Errorf("soak: projections: %w", err)
	}
	stats, err := store.Stats(ctx)
	if err != nil {
		return res, fmt.Errorf("soak: stats: %w", err)
	}
	res.DiskBytes = stats.DiskBytes
	return res, checkSoak(ctx, cfg, res, store, repo, model, opened, stats)
}

// checkSoak compares the store, the read models and the memory samples.
func checkSoak(ctx context.Context, cfg SoakConfig, res SoakResult, store runtime.Store, repo *account.AccountRepository, m *soakModel, opened uint64, stats runtime.Stats) error {
	want := res.Events + opened
	if stats.Events != want || stats.Head != want || res.Head != want {
		return fmt.Errorf("soak: writers acknowledged %d events (with %d opens), store has %d events, head %d (%d after the load)", res.Events, opened, stats.Events, stats.Head, res.Head)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ledgerAt == 0 || m.streamAt == 0 || m.namesMax != res.Head {
		return fmt.Errorf("soak: projections stopped at ledger %d, streams %d, names %d; head %d", m.ledgerAt, m.streamAt, m.namesMax, res.Head)
	}
	var names uint64
	for _, n := range m.names {
		names += n
	}
	if names != res.Head {
		return fmt.Errorf("soak: %s counted %d records, head %d", soakNames, names, res.Head)
	}
	var total int64
	for id, row := range m.balances {
		a, v, err := repo.Load(ctx, id)
		if err != nil {
			return fmt.Errorf("soak: load account %s: %w", id, err)
		}
		if a.Balance != row.balance || v != row.version {
			return fmt.Errorf("soak: account %s is %d at version %d, %s says %d at %d", id, a.Balance, v, soakBalances, row.balance, row.version)
		}
		total += a.Balance
	}
	if len(m.balances) != cfg.Writers+cfg.Shared {
		return fmt.Errorf("soak: %s has %d accounts, want %d", soakBalances, len(m.balances), cfg.Writers+cfg.Shared)
	}
	if total != m.ledger {
		return fmt.Errorf("soak: accounts hold %d, %s says %d", total, soakLedger, m.ledger)
	}
	for st, v := range m.versions {
		sv, err := store.StreamVersion(ctx, st)
		if err != nil {
			return fmt.Errorf("soak: version of %s: %w", st, err)
		}
		if sv != v {
			return fmt.Errorf("soak: %s is at version %d, %s says %d", st, sv, soakStreams, v)
		}
	}
	if stats.Streams != uint64(len(m.versions)) {
		return fmt.Errorf("soak: store has %d streams, %s saw %d", stats.Streams, soakStreams, len(m.versions))
	}
	return checkMemory(cfg, res)
}

// checkMemory checks the samples after warm-up: the last HeapInuse within
// cfg.MemFactor of the median, goroutines within cfg.GoroutineSlack.
func checkMemory(cfg SoakConfig, res SoakResult) error {
	if len(res.Samples) == 0 {
		return errors.New("soak: no memory sample")
	}
	_, med, _ := res.Stat(func(s MemSample) uint64 { return s.HeapInuse })
	last := res.Samples[len(res.Samples)-1]
	if float64(last.HeapInuse) > cfg.MemFactor*float64(med) {
		return fmt.Errorf("soak: memory grew: HeapInuse %d at the end, median after warm-up %d (limit ×%.2f)", last.HeapInuse, med, cfg.MemFactor)
	}
	g0, _, g2 := res.Stat(func(s MemSample) uint64 { return uint64(s.Goroutines) })
	if g2-g0 > uint64(cfg.GoroutineSlack) {
		return fmt.Errorf("soak: goroutines not flat after warm-up: %d to %d (slack %d)", g0, g2, cfg.GoroutineSlack)
	}
	return nil
}

// rss returns the process's resident set size on Linux, 0 elsewhere.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
