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
	"github.com/cqrsgen/cqrsgen/internal/torture"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		child     = flag.String("child", "", "internal: run as the child process with this spec")
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
	)
	flag.Parse()
	if *child != "" {
		return torture.ChildMain(*child)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrstorture:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

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
