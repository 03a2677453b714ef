// Package bench is the logic of cmd/cqrsbench: workloads measured against
// cqrsgen's stores and generated code, each beside the raw layer beneath it
// (the disk's fsync rate, raw Pebble, reflection msgpack) in the same run,
// with latency percentiles from a log-linear histogram and reports in
// Markdown and JSON.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run's configuration (the program's flags).
type Config struct {
	// Quick selects small counts and short time caps (the whole run takes
	// well under a minute).
	Quick bool
	// Scale multiplies every operation count (tests use tiny scales).
	// Zero means 1.
	Scale float64
	// Stores are the stores to measure: memory, pebble, postgres.
	Stores []string
	// PostgresDSN is required when Stores holds postgres.
	PostgresDSN string
	// Dir is the parent of the data directories (Pebble stores, raw
	// Pebble, the fsync file). It must not be on a memory filesystem.
	Dir string
	// Only, when set, selects the cases whose name it matches.
	Only *regexp.Regexp
	// Command is recorded in the report.
	Command string
	// Progress receives progress; nil discards it.
	Progress Progress
	// Log receives warnings; nil discards them.
	Log io.Writer
	// TurnLog, when set, receives one line per turn of every alternated
	// case (each side's rate, percentiles, garbage collections and, for
	// Pebble sides, the database's state), to see why a case's sides
	// differ; nil writes nothing.
	TurnLog io.Writer
}

// Known store names.
var knownStores = []string{"memory", "pebble", "postgres"}

// limits are the per-row budgets: a row stops at whichever of its count or
// its time cap comes first, and says so in its note.
type limits struct {
	appendEvents int64         // events per append row
	appendTime   time.Duration // time cap per append row
	loads        int64         // loads per load row
	loadTime     time.Duration
	loadAggs     [3]int // aggregates populated for sizes 10, 100, 1000
	logEvents    int64  // events in the whole-log read workload
	readTime     time.Duration
	codecTime    time.Duration
	fsyncOps     int64
	fsyncTime    time.Duration
}

func limitsFor(quick bool, scale float64) limits {
	l := limits{
		appendEvents: 1_000_000, appendTime: 5 * time.Second,
		loads: 20_000, loadTime: 2 * time.Second, loadAggs: [3]int{200, 100, 20},
		logEvents: 500_000, readTime: 10 * time.Second,
		codecTime: time.Second,
		fsyncOps:  20_000, fsyncTime: 3 * time.Second,
	}
	if quick {
		l = limits{
			appendEvents: 50_000, appendTime: 400 * time.Millisecond,
			loads: 2_000, loadTime: 200 * time.Millisecond, loadAggs: [3]int{20, 10, 4},
			logEvents: 50_000, readTime: 2 * time.Second,
			codecTime: 100 * time.Millisecond,
			fsyncOps:  2_000, fsyncTime: 500 * time.Millisecond,
		}
	}
	sc := func(n int64) int64 { return max(1, int64(float64(n)*scale)) }
	l.appendEvents = sc(l.appendEvents)
	l.loads = sc(l.loads)
	l.logEvents = sc(l.logEvents)
	l.fsyncOps = sc(l.fsyncOps)
	for i := range l.loadAggs {
		l.loadAggs[i] = int(sc(int64(l.loadAggs[i])))
	}
	return l
}

// Batch sizes and writer counts of the append workload.
var (
	appendBatches = []int{1, 100}
	appendWriters = []int{1, 8, 64, 256}
)

// Run measures every selected case and returns the report. Data
// directories are created under cfg.Dir and removed afterwards.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	for _, s := range cfg.Stores {
		if !slices.Contains(knownStores, s) {
			return nil, fmt.Errorf("bench: unknown store %q (known: %s)", s, strings.Join(knownStores, ", "))
		}
	}
	if slices.Contains(cfg.Stores, "postgres") && cfg.PostgresDSN == "" {
		return nil, errors.New("bench: store postgres needs -postgres-dsn")
	}
	if cfg.Progress == nil {
		cfg.Progress = nopProgress{}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(os.TempDir(), "cqrsbench")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: data directory: %w", err)
	}
	root, err := os.MkdirTemp(cfg.Dir, "run-")
	if err != nil {
		return nil, fmt.Errorf("bench: data directory: %w", err)
	}
	defer os.RemoveAll(root)

	machine := DescribeMachine(root)
	durable := slices.Contains(cfg.Stores, "pebble")
	if durable && machine.Filesystem.InMemory() {
		return nil, fmt.Errorf("bench: data directory %s is on %s (in memory): fsync figures would be meaningless; pass -dir on a real disk", cfg.Dir, machine.Filesystem.Type)
	}
	r := &runner{cfg: cfg, lim: limitsFor(cfg.Quick, cfg.Scale), root: root}
	rep := &Report{Machine: machine, Setup: Setup{
		Command: cfg.Command, Quick: cfg.Quick, Scale: cfg.Scale, Stores: cfg.Stores,
		DataDir: cfg.Dir, Batches: appendBatches, Writers: appendWriters,
		EventBytes: len(samplePayload()), Started: time.Now(),
		Fsync: "memory: none (nothing is durable); pebble: every append waits for its WAL fsync (pebble.Sync), raw Pebble limit rows likewise; postgres: server default (synchronous_commit as configured)",
	}}
	defer cfg.Progress.Close()
	steps := []func(context.Context) error{r.fsyncCase, r.appendCases, r.loadCases, r.spreadCases, r.mixedCases, r.readCases, r.codecCases}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			rep.Rows = r.rows
			return rep, err
		}
	}
	rep.Rows = r.rows
	rep.Setup.Finished = time.Now()
	rep.Targets = evaluateTargets(rep.Rows)
	return rep, nil
}

// runner carries one run's state.
type runner struct {
	cfg  Config
	lim  limits
	root string
	seq  atomic.Int64
	rows []Row
	// fsync is the fsync row, when measured.
	fsync *Row
}

func (r *runner) selected(caseName string) bool {
	return r.cfg.Only == nil || r.cfg.Only.MatchString(caseName)
}

func (r *runner) has(store string) bool { return slices.Contains(r.cfg.Stores, store) }

// tempDir returns a fresh directory under the run's root.
func (r *runner) tempDir(prefix string) string {
	return filepath.Join(r.root, fmt.Sprintf("%s-%d", prefix, r.seq.Add(1)))
}

// add records a row and reports it.
func (r *runner) add(row Row) {
	r.rows = append(r.rows, row)
	r.cfg.Progress.End(row)
}

// pair sets row's ratio to limit on the events/s basis.
func ratioRate(row *Row, limit Row) {
	if limit.EventsPerSec > 0 && row.EventsPerSec > 0 {
		row.Limit, row.Ratio, row.RatioBasis = limit.Subject, row.EventsPerSec/limit.EventsPerSec, "events/s"
	}
}

// ratioP50 sets row's ratio to limit on the p50 latency basis.
func ratioP50(row *Row, limit Row) {
	if row.Latency != nil && limit.Latency != nil && row.Latency.P50 > 0 {
		row.Limit, row.Ratio, row.RatioBasis = limit.Subject, float64(limit.Latency.P50)/float64(row.Latency.P50), "p50"
	}
}

// ratioNs sets row's ratio to limit on the ns/op basis.
func ratioNs(row *Row, limit Row) {
	if row.NsPerOp > 0 && limit.NsPerOp > 0 {
		row.Limit, row.Ratio, row.RatioBasis = limit.Subject, limit.NsPerOp/row.NsPerOp, "ns/op"
	}
}

// driveResult is what drive measured.
type driveResult struct {
	hist    *Histogram
	ops     int64
	elapsed time.Duration
	capped  bool // the time cap, not the count, ended the row
}

// add merges another turn of the same row into res.
func (res *driveResult) add(o driveResult) {
	if res.hist == nil {
		res.hist = NewHistogram()
	}
	res.hist.Merge(o.hist)
	res.ops += o.ops
	res.elapsed += o.elapsed
	res.capped = res.capped || o.capped
}

// drive runs op from `workers` goroutines until maxOps operations are done
// in total or maxTime has passed, timing every call. op gets the worker's
// index; the first error stops every worker and is returned.
func drive(ctx context.Context, p Progress, name string, workers int, maxOps int64, maxTime time.Duration, op func(ctx context.Context, w int) error) (driveResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		claimed, done atomic.Int64
		capped        atomic.Bool
		wg            sync.WaitGroup
		errOnce       sync.Once
		firstErr      error
	)
	// The workers and their histograms (58 KiB each) are made before the
	// clock starts, and the workers wait for it: with 256 workers, making
	// them inside the timed window cost a turn of a fast side (the memory
	// limit's 100-event appends) a third of its time.
	hists := make([]*Histogram, workers)
	for w := range hists {
		hists[w] = NewHistogram()
	}
	p.Begin(name, maxOps, &done)
	begin := make(chan struct{})
	var start, deadline time.Time
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hists[w]
			<-begin
			for claimed.Add(1) <= maxOps {
				t0 := time.Now()
				if t0.After(deadline) {
					capped.Store(true)
					return
				}
				if err := op(ctx, w); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				h.Record(int64(time.Since(t0)))
				done.Add(1)
			}
		}()
	}
	start = time.Now()
	deadline = start.Add(maxTime)
	close(begin)
	wg.Wait()
	res := driveResult{hist: NewHistogram(), ops: done.Load(), elapsed: time.Since(start), capped: capped.Load()}
	for _, h := range hists {
		res.hist.Merge(h)
	}
	if firstErr != nil {
		return res, fmt.Errorf("bench: %s: %w", name, firstErr)
	}
	return res, nil
}

// fill sets the throughput, latency and note fields of row from res.
func (res driveResult) fill(row *Row, eventsPerOp int) {
	row.Ops = res.ops
	row.Events = res.ops * int64(eventsPerOp)
	row.Seconds = res.elapsed.Seconds()
	if row.Seconds > 0 {
		row.OpsPerSec = float64(row.Ops) / row.Seconds
		row.EventsPerSec = float64(row.Events) / row.Seconds
	}
	row.Latency = res.hist.Summary()
	if res.capped {
		row.Note = fmt.Sprintf("time cap %.1fs reached after %d ops", res.elapsed.Seconds(), res.ops)
	}
}

func ptr[T any](v T) *T { return &v }
