// Command cqrstorture is the crash campaign of cqrsgen's durable stores. It
// starts a child process (this binary re-executed with -child) that appends
// and executes commands from many goroutines against a Pebble store (and a
// PostgreSQL one with -postgres-dsn or -pgtest), reporting every
// acknowledged operation on stdout; it kills the child with SIGKILL at a
// random moment, restarts it, and after every round verifies that every
// acknowledged append is present exactly once, versions are contiguous per
// stream, positions strictly increasing without gaps, idempotency keys still
// honoured and the projection checkpoint never ahead of durable data.
//
// Usage:
//
//	go run ./cmd/cqrstorture [-rounds N] [-writers N] [-seed N] [-dir DIR] [-duration D]
//	                         [-fresh-every N] [-postgres-dsn DSN | -pgtest] [-pebble=false] [-v]
//	go run ./cmd/cqrstorture -soak 10m [-soak-writers 64] [-soak-sample 5s] [-dir DIR] [-seed N] [-v]
//	go run ./cmd/cqrstorture -replicas 3 [-kills 20] [-lease-ttl 5s] [-writers 4] [-partitions N] (-postgres-dsn DSN | -pgtest [-restarts N]) [-seed N] [-v]
//
// With -replicas N it runs the replicas campaign on PostgreSQL instead: N
// replica processes (this binary re-executed with -replica) run the bank's
// balances read model (kept in PostgreSQL) and transfer saga, each under
// its lease, while writers request transfers and deposits; the process
// holding a lease is SIGKILLed -kills times (the read model's and the
// saga's in turn) and replaced, and the failover times are reported; with
// -restarts the server also crashes and stays down 2 s that many times. At the
// end the read model must equal a rebuild from position 0, no saga step may
// have run twice beyond its idempotency key, and nothing acknowledged may
// be lost.
//
// With -soak it runs the load and soak instead (no kills): 64 writers
// executing commands through the generated bank repository and appending
// directly, four projections in a projection.Group, memory sampled
// every few seconds; it exits 1 on an error, a read model disagreeing with
// the store, or memory or goroutines growing after warm-up.
//
// It prints one summary line per backend and exits 1 on the first violated
// guarantee, keeping the store directory for inspection. See
// docs/reliability.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/internal/ops/torture"
	"github.com/cqrsgen/cqrsgen/runtime/lease"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		child     = flag.String("child", "", "internal: run as the child process with this spec")
		replica   = flag.String("replica", "", "internal: run as a replica of the replicas campaign with this spec")
		replicas  = flag.Int("replicas", 0, "run the replicas campaign with this many replica processes on PostgreSQL")
		kills     = flag.Int("kills", 20, "replicas campaign: SIGKILLs of a lease holder")
		leaseTTL  = flag.Duration("lease-ttl", lease.DefaultTTL, "replicas campaign: the replicas' lease TTL")
		parts     = flag.Int("partitions", 1, "replicas campaign: split the read model in this many partitions")
		restarts  = flag.Int("restarts", 0, "replicas campaign with -pgtest: crash the server this many times between kills, 2 s down each")
		rounds    = flag.Int("rounds", 100, "kill rounds per backend")
		writers   = flag.Int("writers", 16, "writer goroutines in each child")
		seed      = flag.Uint64("seed", 0, "seed of kill moments and choices (0: from the clock)")
		dir       = flag.String("dir", "", "Pebble store directory (default: a new temporary directory, removed on success)")
		duration  = flag.Duration("duration", 500*time.Millisecond, "longest a child runs after it is ready before it is killed")
		dsn       = flag.String("postgres-dsn", "", "also run against the PostgreSQL server at this DSN (a fresh schema)")
		usePG     = flag.Bool("pgtest", false, "also run against a throwaway PostgreSQL server started with pgtest")
		usePebble = flag.Bool("pebble", true, "run against Pebble (-pebble=false with -pgtest or -postgres-dsn: PostgreSQL only)")
		fresh     = flag.Int("fresh-every", 200, "start on a fresh store every N rounds, so verifying the whole log after each kill stays fast (0: never)")
		verbose   = flag.Bool("v", false, "print one line per round")
		soak      = flag.Duration("soak", 0, "run the load and soak for this long on Pebble instead of the crash campaign")
		soakW     = flag.Int("soak-writers", 64, "writer goroutines of the soak")
		soakEvery = flag.Duration("soak-sample", 5*time.Second, "interval between memory samples of the soak")
	)
	flag.Parse()
	if *child != "" {
		return torture.ChildMain(*child)
	}
	if *replica != "" {
		return torture.ReplicaMain(*replica)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *soak > 0 {
		return runSoak(*dir, torture.SoakConfig{Writers: *soakW, Duration: *soak, SampleEvery: *soakEvery, Seed: *seed}, *verbose)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrstorture:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *replicas > 0 {
		return runReplicas(ctx, exe, *dsn, *usePG, torture.ReplicaConfig{Replicas: *replicas, Kills: *kills,
			Writers: min(*writers, 16), TTL: *leaseTTL, Seed: *seed, Restarts: *restarts, Partitions: *parts}, *verbose)
	}

	removeDir := false
	if *dir == "" {
		d, err := os.MkdirTemp("", "cqrstorture-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cqrstorture:", err)
			return 1
		}
		*dir, removeDir = filepath.Join(d, "store"), true
		defer func() {
			if removeDir {
				os.RemoveAll(d)
			}
		}()
	}
	var targets []torture.Target
	if *usePebble {
		targets = append(targets, torture.Target{Backend: torture.Pebble, Dir: *dir})
	}
	if *usePG && *dsn == "" {
		srv, err := pgtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cqrstorture: starting PostgreSQL:", err)
			return 1
		}
		defer srv.Stop()
		*dsn = srv.DSN()
	}
	if *dsn != "" {
		targets = append(targets, torture.Target{Backend: torture.Postgres, DSN: *dsn,
			Schema: fmt.Sprintf("cqrstorture_%d", *seed%1_000_000_007)})
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "cqrstorture: nothing to run: -pebble=false needs -pgtest or -postgres-dsn")
		return 2
	}
	fmt.Printf("cqrstorture: seed %d, %d rounds, %d writers, kill within %v of ready, fsync on\n", *seed, *rounds, *writers, *duration)
	failed := false
	for _, t := range targets {
		sum, err := campaign(ctx, t, *rounds, *fresh, torture.Config{
			Writers: *writers, Seed: *seed, Duration: *duration,
			Command: func(spec torture.ChildSpec) *exec.Cmd {
				return exec.Command(exe, "-child", spec.Encode())
			},
		}, *verbose)
		fmt.Println(sum)
		if err != nil {
			failed = true
			removeDir = false
			fmt.Fprintf(os.Stderr, "cqrstorture: FAIL on %s (seed %d): %v\n", t, *seed, err)
			if errors.Is(err, context.Canceled) {
				break
			}
		}
	}
	if failed {
		return 1
	}
	fmt.Println("cqrstorture: PASS")
	return 0
}

// campaign runs rounds kill rounds against t, on a fresh store (a new
// directory or schema) every fresh rounds, and adds up the summaries.
func campaign(ctx context.Context, t torture.Target, rounds, fresh int, cfg torture.Config, verbose bool) (torture.Summary, error) {
	if fresh <= 0 || fresh > rounds {
		fresh = rounds
	}
	total := torture.Summary{Target: t.String()}
	for part := 0; rounds > 0; part++ {
		cfg.Target = t
		if part > 0 {
			switch t.Backend {
			case torture.Pebble:
				cfg.Target.Dir = fmt.Sprintf("%s-%d", t.Dir, part)
			case torture.Postgres:
				cfg.Target.Schema = fmt.Sprintf("%s_%d", t.Schema, part)
			}
		}
		cfg.Rounds = min(fresh, rounds)
		rounds -= cfg.Rounds
		cfg.Seed += uint64(part)
		if verbose {
			cfg.Log = os.Stdout
			fmt.Printf("campaign part %d on %s\n", part, cfg.Target)
		}
		sum, err := torture.Run(ctx, cfg)
		total.Add(sum)
		if err != nil {
			return total, fmt.Errorf("on %s: %w", cfg.Target, err)
		}
	}
	return total, nil
}

// runSoak runs the load and soak in dir (a temporary directory, removed on
// success, when empty) and prints its figures.
func runSoak(dir string, cfg torture.SoakConfig, verbose bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	keep := dir != ""
	if dir == "" {
		d, err := os.MkdirTemp("", "cqrstorture-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cqrstorture:", err)
			return 1
		}
		dir = filepath.Join(d, "store")
		defer func() {
			if !keep {
				os.RemoveAll(d)
			}
		}()
	}
	cfg.Dir = dir
	if verbose {
		cfg.Log = os.Stdout
	}
	fmt.Printf("cqrstorture: soak for %v, seed %d, %d writers, 4 projections, Pebble at %s, fsync on\n", cfg.Duration, cfg.Seed, cfg.Writers, dir)
	res, err := torture.RunSoak(ctx, cfg)
	if len(res.Samples) > 0 {
		fmt.Println(res)
	}
	if err != nil {
		keep = true
		fmt.Fprintf(os.Stderr, "cqrstorture: soak FAIL (seed %d, store %s): %v\n", cfg.Seed, dir, err)
		return 1
	}
	fmt.Println("cqrstorture: soak PASS")
	return 0
}

// runReplicas runs the replicas campaign on the server at dsn, or on a
// throwaway one started with pgtest, in a fresh schema.
func runReplicas(ctx context.Context, exe, dsn string, usePG bool, cfg torture.ReplicaConfig, verbose bool) int {
	keep := " kept"
	if dsn == "" {
		keep = ""
		if !usePG {
			fmt.Fprintln(os.Stderr, "cqrstorture: -replicas needs -postgres-dsn or -pgtest")
			return 2
		}
		srv, err := pgtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cqrstorture: starting PostgreSQL:", err)
			return 1
		}
		defer srv.Stop()
		dsn = srv.DSN()
		cfg.Restart = func() error {
			srv.Crash()
			time.Sleep(2 * time.Second)
			return srv.Restart()
		}
	} else if cfg.Restarts > 0 {
		fmt.Fprintln(os.Stderr, "cqrstorture: -restarts needs -pgtest (a server this program can crash)")
		return 2
	}
	cfg.DSN, cfg.Schema = dsn, fmt.Sprintf("cqrstorture_replicas_%d", cfg.Seed%1_000_000_007)
	cfg.Command = func(spec torture.ReplicaSpec) *exec.Cmd { return exec.Command(exe, "-replica", spec.Encode()) }
	if verbose {
		cfg.Log = os.Stdout
	}
	fmt.Printf("cqrstorture: replicas campaign, seed %d, %d replicas, read model in %d partition(s), %d kills, %d server restarts, lease TTL %v, %d writers, schema %s\n",
		cfg.Seed, cfg.Replicas, max(cfg.Partitions, 1), cfg.Kills, cfg.Restarts, cfg.TTL, cfg.Writers, cfg.Schema)
	sum, err := torture.RunReplicas(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cqrstorture: replicas FAIL (seed %d, schema %s%s): %v\n", cfg.Seed, cfg.Schema, keep, err)
		return 1
	}
	fmt.Println(sum)
	fmt.Println("cqrstorture: replicas PASS")
	return 0
}
