package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// ChildSpec is what the parent tells a child process: where the store is,
// which round this is (tags are unique per round), how many writer
// goroutines to run and the seed of their choices.
type ChildSpec struct {
	Target  Target `json:"target"`
	Round   int    `json:"round"`
	Writers int    `json:"writers"`
	Seed    uint64 `json:"seed"`
	// Accounts and Shared are how many counter aggregates and shared raw
	// streams every writer picks from (contention on one stream).
	Accounts int `json:"accounts"`
	Shared   int `json:"shared"`
}

// Encode returns the spec as the argument of the child flag.
func (c ChildSpec) Encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// DecodeChildSpec parses the argument of the child flag.
func DecodeChildSpec(s string) (ChildSpec, error) {
	var c ChildSpec
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("torture: child spec %q: %w", s, err)
	}
	if c.Writers <= 0 || c.Accounts <= 0 || c.Shared <= 0 {
		return c, fmt.Errorf("torture: child spec %q: writers, accounts and shared must be positive", s)
	}
	return c, nil
}

// Lines the child writes, one per acknowledged operation:
//
//	ready <head>                                   the store is open
//	a <type> <id> <first version> <first position> <n> <batch> [key]
//	x <account id> <key> <version>                 an Execute returned version
//	h <position>                                   the projection handled position
//
// Each line is written with one write(2) after the operation returned, so a
// SIGKILL loses no line of an acknowledged operation (at worst it tears the
// last line, which the parent ignores).
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) error {
	b := fmt.Appendf(nil, format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(b)
	return err
}

// RunChild runs the child side until the process is killed (or ctx is
// done, for tests): it opens the store, reports "ready", and runs
// spec.Writers writer goroutines and one projection. It returns an error
// only when something that must not fail did.
func RunChild(ctx context.Context, spec ChildSpec, stdout io.Writer) error {
	s, err := open(ctx, spec.Target)
	if err != nil {
		return fmt.Errorf("torture child: open %s: %w", spec.Target, err)
	}
	defer s.Close()
	out := &lineWriter{w: stdout}
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if err := out.printf("ready %d\n", head); err != nil {
		return err
	}
	repo := runtime.NewRepository(s, counterAggregate())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, spec.Writers+1)
	var wg sync.WaitGroup

	// One child runs at a time, and the one before it was SIGKILLed with
	// its lease still standing: no lease, or each child would stand by
	// for the TTL instead of exercising the projection (the replicas
	// campaign tests leases).
	group := projection.NewGroup(s, projection.CheckpointEvery(7, 20*time.Millisecond), projection.WithoutLease())
	if err := group.Add(projection.Projection{
		Name: ProjectionName,
		Handle: func(_ context.Context, rec runtime.Record) error {
			return out.printf("h %d\n", rec.Position)
		},
	}); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := group.Run(ctx); err != nil {
			errc <- fmt.Errorf("torture child: projection: %w", err)
			cancel()
		}
	}()

	for w := range spec.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := &writer{spec: spec, w: w, s: s, repo: repo, out: out,
				rng: rand.New(rand.NewPCG(spec.Seed, uint64(spec.Round)<<16|uint64(w)))}
			if err := wr.run(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writer is one goroutine of the child.
type writer struct {
	spec ChildSpec
	w    int
	s    runtime.Store
	repo *runtime.Repository[counter, added, add]
	out  *lineWriter
	rng  *rand.Rand

	own     runtime.StreamID
	version uint64
	done    []doneExec // keys this writer executed, for re-execution
}

type doneExec struct {
	account, key string
	version      uint64
}

func (wr *writer) run(ctx context.Context) error {
	wr.own = runtime.StreamID{Type: RawType, ID: "w" + strconv.Itoa(wr.w)}
	v, err := wr.s.StreamVersion(ctx, wr.own)
	if err != nil {
		return fmt.Errorf("torture child: version of %s: %w", wr.own, err)
	}
	wr.version = v
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("r%dw%dn%d", wr.spec.Round, wr.w, n)
		var err error
		switch p := wr.rng.IntN(100); {
		case p < 35:
			err = wr.appendOwn(ctx, id, false)
		case p < 45:
			err = wr.appendOwn(ctx, id, true)
		case p < 65:
			err = wr.appendShared(ctx, id)
		case p < 95 || len(wr.done) == 0:
			err = wr.execute(ctx, id)
		default:
			err = wr.reexecute(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func batch(id string, n int) []runtime.EventData {
	evs := make([]runtime.EventData, n)
	for i := range evs {
		evs[i] = runtime.EventData{Name: eventName, Schema: 1, Data: fmt.Appendf(nil, "%s%s/%d/%d", rawPrefix, id, i, n)}
	}
	return evs
}

// appendOwn appends 1–4 events to the writer's own stream at its exact
// version, with the batch id as idempotency key when keyed.
func (wr *writer) appendOwn(ctx context.Context, id string, keyed bool) error {
	if keyed {
		id = "k" + id // the verifier knows keyed batches by their id
	}
	req := runtime.AppendRequest{Stream: wr.own, Expected: wr.version, Events: batch(id, 1+wr.rng.IntN(4))}
	if keyed {
		req.IdempotencyKey = id
	}
	res, err := wr.s.Append(ctx, req)
	if err != nil {
		return fmt.Errorf("torture child: append %s to %s at %d: %w", id, wr.own, wr.version, err)
	}
	if res.FirstVersion != wr.version+1 || res.LastVersion != wr.version+uint64(len(req.Events)) {
		return fmt.Errorf("torture child: append %s to %s at %d returned %+v", id, wr.own, wr.version, res)
	}
	wr.version = res.LastVersion
	return wr.out.printf("a %s %s %d %d %d %s %s\n", RawType, wr.own.ID, res.FirstVersion, res.FirstPosition, len(req.Events), id, req.IdempotencyKey)
}

// appendShared appends 1–3 events to one of the shared streams with
// AnyVersion: all writers contend for them.
func (wr *writer) appendShared(ctx context.Context, id string) error {
	st := runtime.StreamID{Type: RawType, ID: "shared" + strconv.Itoa(wr.rng.IntN(wr.spec.Shared))}
	req := runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: batch(id, 1+wr.rng.IntN(3))}
	res, err := wr.s.Append(ctx, req)
	if err != nil {
		return fmt.Errorf("torture child: append %s to %s: %w", id, st, err)
	}
	return wr.out.printf("a %s %s %d %d %d %s\n", RawType, st.ID, res.FirstVersion, res.FirstPosition, len(req.Events), id)
}

func (wr *writer) account() string { return "acct" + strconv.Itoa(wr.rng.IntN(wr.spec.Accounts)) }

// execute runs a command with a fresh idempotency key on a shared account.
func (wr *writer) execute(ctx context.Context, key string) error {
	acct := wr.account()
	v, err := wr.repo.Execute(ctx, acct, add{Tag: key}, runtime.IdempotencyKey(key))
	if err != nil {
		return fmt.Errorf("torture child: execute %s on %s: %w", key, acct, err)
	}
	wr.done = append(wr.done, doneExec{account: acct, key: key, version: v})
	return wr.out.printf("x %s %s %d\n", acct, key, v)
}

// reexecute repeats an executed key: it must return the first version.
func (wr *writer) reexecute(ctx context.Context) error {
	d := wr.done[wr.rng.IntN(len(wr.done))]
	v, err := wr.repo.Execute(ctx, d.account, add{Tag: d.key + "-again"}, runtime.IdempotencyKey(d.key))
	if err != nil {
		return fmt.Errorf("torture child: re-execute %s on %s: %w", d.key, d.account, err)
	}
	if v != d.version {
		return fmt.Errorf("torture child: re-executing key %s on %s returned version %d, first returned %d", d.key, d.account, v, d.version)
	}
	return wr.out.printf("x %s %s %d\n", d.account, d.key, v)
}

// ChildMain runs a child from its encoded spec, writing acknowledgements to
// os.Stdout and failures to os.Stderr, and returns the exit status.
func ChildMain(specArg string) int {
	spec, err := DecodeChildSpec(specArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := RunChild(context.Background(), spec, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
