package torture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes a campaign against one store.
type Config struct {
	// Target is the store the children write to (fresh or left by an
	// earlier campaign with the same ids: the verifier then only requires
	// what this campaign saw acknowledged, but still checks the whole log).
	Target Target
	// Rounds is how many times a child is started and killed.
	Rounds int
	// Writers is how many goroutines each child runs.
	Writers int
	// Seed seeds the kill moments and the children's choices.
	Seed uint64
	// Duration is the longest a child runs after it is ready before it is
	// killed; each round picks a moment uniformly in [0, Duration].
	Duration time.Duration
	// Command returns the command that runs a child with spec (the same
	// binary re-executed with a flag, or the test binary with an
	// environment variable).
	Command func(spec ChildSpec) *exec.Cmd
	// Log, when set, receives one line per round.
	Log io.Writer
}

// Summary is what a campaign did and verified.
type Summary struct {
	Target string
	Rounds int
	// Kills counts SIGKILLs sent (rounds whose child was still running).
	Kills int
	// EarlyKills counts kills before the child reported ready (during
	// Open and WAL replay).
	EarlyKills int
	// Acked* count acknowledged operations reported by the children.
	AckedAppends, AckedEvents, AckedExecutes, Reexecutes int
	// Unacked counts events found in the log that no child acknowledged
	// (committed just before a kill): allowed, and checked whole.
	Unacked int
	// Events is the size of the log at the end; Verified the records
	// checked over all rounds (the whole log is read after every round).
	Events, Verified uint64
	// KeysRechecked counts idempotency keys re-executed by the verifier.
	KeysRechecked int
	// Checkpoint is the projection's checkpoint at the end.
	Checkpoint uint64
	Duration   time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("%s: %d rounds, %d kills (%d before ready), %d appends (%d events) and %d executes acknowledged, %d re-executions, %d unacknowledged events found whole, %d events in the log, %d records verified, %d idempotency keys re-executed by the verifier, projection checkpoint %d, %s",
		s.Target, s.Rounds, s.Kills, s.EarlyKills, s.AckedAppends, s.AckedEvents, s.AckedExecutes, s.Reexecutes,
		s.Unacked, s.Events, s.Verified, s.KeysRechecked, s.Checkpoint, s.Duration.Round(time.Millisecond))
}

// Add adds the figures of another campaign (on a fresh store) to s.
func (s *Summary) Add(o Summary) {
	s.Rounds += o.Rounds
	s.Kills += o.Kills
	s.EarlyKills += o.EarlyKills
	s.AckedAppends += o.AckedAppends
	s.AckedEvents += o.AckedEvents
	s.AckedExecutes += o.AckedExecutes
	s.Reexecutes += o.Reexecutes
	s.Unacked += o.Unacked
	s.Events += o.Events
	s.Verified += o.Verified
	s.KeysRechecked += o.KeysRechecked
	s.Checkpoint = o.Checkpoint
	s.Duration += o.Duration
}

// Run runs the campaign and returns its summary; the error describes the
// first violated guarantee (or a child that failed on its own).
func Run(ctx context.Context, cfg Config) (sum Summary, err error) {
	if cfg.Rounds <= 0 || cfg.Writers <= 0 || cfg.Duration <= 0 || cfg.Command == nil {
		return Summary{}, errors.New("torture: Rounds, Writers, Duration and Command are required")
	}
	start := time.Now()
	v := newVerifier(cfg.Target)
	sum = Summary{Target: cfg.Target.String()}
	defer func() {
		sum.AckedAppends, sum.AckedEvents, sum.AckedExecutes, sum.Reexecutes = v.counts()
		sum.Unacked = v.lastUnacked
		sum.Duration = time.Since(start)
	}()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x70727475))
	for round := range cfg.Rounds {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		spec := ChildSpec{Target: cfg.Target, Round: round, Writers: cfg.Writers, Seed: rng.Uint64(), Accounts: 8, Shared: 4}
		// One round in ten kills the child at a random moment of its first
		// 100 ms whether or not it is ready (recovery and replay); the
		// others at a random moment after it is ready.
		early := rng.IntN(10) == 0
		delay := time.Duration(rng.Int64N(int64(cfg.Duration) + 1))
		if early {
			delay = time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
		}
		rs, err := runRound(ctx, cfg, spec, early, delay, v)
		sum.Rounds++
		if rs.killed {
			sum.Kills++
			if !rs.ready {
				sum.EarlyKills++
			}
		}
		if err != nil {
			return sum, fmt.Errorf("round %d: %w", round, err)
		}
		if err := settle(ctx, cfg.Target); err != nil {
			return sum, fmt.Errorf("round %d: %w", round, err)
		}
		vs, err := v.verify(ctx)
		if err != nil {
			return sum, fmt.Errorf("round %d (child killed %v after ready=%v, %d lines): %w", round, delay, rs.ready, rs.lines, err)
		}
		sum.Verified += vs.records
		sum.Events = vs.records
		sum.KeysRechecked += vs.rechecked
		sum.Checkpoint = vs.checkpoint
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "round %d: killed after %v (ready %v), %d acknowledgements; log %d events, %d unacknowledged, checkpoint %d, %d keys re-executed\n",
				round, delay.Round(time.Millisecond), rs.ready, rs.lines, vs.records, vs.unacked, vs.checkpoint, vs.rechecked)
		}
	}
	return sum, nil
}

type roundStats struct {
	ready, killed bool
	lines         int
}

// runRound starts a child, kills it after delay (counted from start when
// early, else from its ready line), and feeds every line it wrote to v.
func runRound(ctx context.Context, cfg Config, spec ChildSpec, early bool, delay time.Duration, v *verifier) (roundStats, error) {
	var rs roundStats
	cmd := cfg.Command(spec)
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return rs, err
	}
	if err := cmd.Start(); err != nil {
		return rs, fmt.Errorf("starting child: %w", err)
	}
	readyc := make(chan struct{})
	var once sync.Once
	linesErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		// Every line is one write(2) of less than PIPE_BUF bytes to a
		// pipe, which is atomic: a SIGKILL cannot tear a line, so every
		// line must parse.
		var perr error
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ready ") {
				once.Do(func() { close(readyc) })
				continue
			}
			rs.lines++
			if err := v.line(line); err != nil && perr == nil {
				perr = err
			}
		}
		linesErr <- errors.Join(perr, sc.Err())
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		// Wait only after the output is drained (exec's rule).
		err := <-linesErr
		waitErr = cmd.Wait()
		linesErr <- err
		close(exited)
	}()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	if !early {
		select {
		case <-readyc:
			rs.ready = true
			timer.Reset(delay)
		case <-exited:
		case <-ctx.Done():
		}
	}
	select {
	case <-timer.C:
		select {
		case <-readyc:
			rs.ready = true
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
	case <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	<-exited
	perr := <-linesErr
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		rs.killed = true
	}
	if !rs.killed {
		if ctx.Err() != nil {
			return rs, ctx.Err()
		}
		return rs, fmt.Errorf("child exited on its own (%v): %s", waitErr, stderr.String())
	}
	if perr != nil {
		return rs, fmt.Errorf("child output: %w (stderr: %s)", perr, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "torture child:") {
		return rs, fmt.Errorf("child reported a failure before it was killed: %s", s)
	}
	return rs, nil
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		q := p[:min(len(p), l.n)]
		l.n -= len(q)
		_, _ = l.w.Write(q)
	}
	return len(p), nil
}
