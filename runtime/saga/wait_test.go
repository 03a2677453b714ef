package saga_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/saga"
)

// flakyStore is unavailable for its first fails calls of Head and Wait.
type flakyStore struct {
	runtime.Store
	fails atomic.Int32
}

func (s *flakyStore) Head(ctx context.Context) (uint64, error) {
	if s.fails.Add(-1) >= 0 {
		return 0, fmt.Errorf("connection lost: %w", runtime.ErrUnavailable)
	}
	return s.Store.Head(ctx)
}

func (s *flakyStore) Wait(ctx context.Context, after uint64) (uint64, error) {
	if s.fails.Add(-1) >= 0 {
		return 0, fmt.Errorf("connection lost: %w", runtime.ErrUnavailable)
	}
	return s.Store.Wait(ctx, after)
}

func TestWaitFor(t *testing.T) {
	type env struct {
		t      *testing.T
		f      *fixture
		sg     *saga.Saga[transfer]
		cancel context.CancelFunc
	}
	cases := []struct {
		name string
		// run starts a runner before WaitFor; before runs before
		// WaitFor, during beside it.
		run            bool
		before, during func(e env)
		// store wraps the fixture's store for WaitFor.
		store func(s runtime.Store) runtime.Store
		// ctx derives WaitFor's context (default: cancellable).
		ctx  func(ctx context.Context) (context.Context, context.CancelFunc)
		id   string
		done func(e env) func(*saga.Instance[transfer]) bool // nil: a final status
		// wantErr is what the error must match (nil: none); want is the
		// status of the instance returned ("": none returned).
		wantErr error
		want    string
	}{{
		name:   "completes while waiting",
		run:    true,
		during: func(e env) { requestTransfer(e.t, e.f.store, "t1", "a", "b", 30) },
		id:     "t1", want: "completed",
	}, {
		name:   "compensated is final too",
		run:    true,
		during: func(e env) { requestTransfer(e.t, e.f.store, "t1", "a", "c", 30) },
		id:     "t1", want: "compensated",
	}, {
		name: "already final",
		run:  true,
		before: func(e env) {
			requestTransfer(e.t, e.f.store, "t1", "a", "b", 30)
			waitSaga(e.t, e.f.store, e.sg, "t1", final)
		},
		id: "t1", want: "completed",
	}, {
		name:   "a condition short of final",
		run:    true,
		during: func(e env) { requestTransfer(e.t, e.f.store, "t1", "a", "b", 30) },
		id:     "t1",
		done: func(env) func(*saga.Instance[transfer]) bool {
			return func(in *saga.Instance[transfer]) bool {
				return len(in.Steps) > 0 && in.Steps[0].Status == saga.StepCompleted
			}
		},
		want: "", // checked below: step 1 completed
	}, {
		name:   "store unavailable for a while",
		run:    true,
		during: func(e env) { requestTransfer(e.t, e.f.store, "t1", "a", "b", 30) },
		store: func(s runtime.Store) runtime.Store {
			fs := &flakyStore{Store: s}
			fs.fails.Store(3)
			return fs
		},
		id: "t1", want: "completed",
	}, {
		// No runner: the instance is never started, so it never
		// completes; the condition cancels ctx once it has seen it.
		name:   "never completes: ctx cancelled",
		before: func(e env) { requestTransfer(e.t, e.f.store, "t1", "a", "b", 30) },
		id:     "t1",
		done: func(e env) func(*saga.Instance[transfer]) bool {
			return func(in *saga.Instance[transfer]) bool {
				e.cancel()
				return false
			}
		},
		wantErr: context.Canceled, want: "running",
	}, {
		name: "never completes: deadline passed",
		run:  true,
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithDeadline(ctx, time.Unix(0, 0))
		},
		id:      "t1",
		wantErr: context.DeadlineExceeded,
	}, {
		name:    "invalid id",
		id:      "",
		wantErr: runtime.ErrInvalid,
	}, {
		name: "closed store",
		store: func(runtime.Store) runtime.Store {
			s := memory.New()
			s.Close()
			return s
		},
		id:      "t1",
		wantErr: runtime.ErrClosed,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := memory.New()
			t.Cleanup(func() { store.Close() })
			f := newFixture(t, store)
			sg := newTransferSaga(f.repo, transferOptions{})
			mk := c.ctx
			if mk == nil {
				mk = context.WithCancel
			}
			ctx, cancel := mk(context.Background())
			defer cancel()
			e := env{t: t, f: f, sg: sg, cancel: cancel}
			if c.run {
				f.run(t, store, sg)
			}
			if c.before != nil {
				c.before(e)
			}
			var ws runtime.Store = store
			if c.store != nil {
				ws = c.store(store)
			}
			var done func(*saga.Instance[transfer]) bool
			if c.done != nil {
				done = c.done(e)
			}
			during := make(chan struct{})
			go func() {
				defer close(during)
				if c.during != nil {
					c.during(e)
				}
			}()
			in, err := saga.WaitFor(ctx, ws, sg, c.id, done)
			<-during
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("WaitFor: %v", err)
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Fatalf("WaitFor: error %v, want one matching %v", err, c.wantErr)
			}
			switch {
			case c.want == "" && c.wantErr != nil:
				if in != nil {
					t.Errorf("WaitFor returned %+v with its error, want nil", in)
				}
			case c.want == "":
				if len(in.Steps) == 0 || in.Steps[0].Status != saga.StepCompleted {
					t.Errorf("returned steps %s, want step 1 completed", stepStatuses(in))
				}
			case in == nil:
				t.Fatalf("WaitFor returned no instance, want one %s", c.want)
			case in.Status.String() != c.want || in.ID != c.id:
				t.Errorf("WaitFor returned %s %s, want %s %s", in.ID, in.Status, c.id, c.want)
			}
		})
	}
}

// countingStore counts the reads of one stream and reports each version
// read of it.
type countingStore struct {
	runtime.Store
	stream   runtime.StreamID
	reads    atomic.Int32
	versions chan uint64
}

func (s *countingStore) ReadStream(ctx context.Context, stream runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	if stream == s.stream {
		s.reads.Add(1)
	}
	return s.Store.ReadStream(ctx, stream, after)
}

func (s *countingStore) StreamVersion(ctx context.Context, stream runtime.StreamID) (uint64, error) {
	v, err := s.Store.StreamVersion(ctx, stream)
	if stream == s.stream {
		s.versions <- v
	}
	return v, err
}

// TestWaitForLoadsOnlyWhenTheInstanceMoves checks that WaitFor sleeps
// between changes of the log and, woken by appends to other streams,
// reads the instance's version without loading it again; an append to
// the instance's stream loads it.
func TestWaitForLoadsOnlyWhenTheInstanceMoves(t *testing.T) {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	f := newFixture(t, store)
	sg := newTransferSaga(f.repo, transferOptions{})
	cs := &countingStore{Store: store, stream: runtime.StreamID{Type: saga.StreamPrefix + sagaName, ID: "t1"},
		versions: make(chan uint64)}
	var calls atomic.Int32
	loaded := make(chan struct{}) // closed by the first call of done
	type result struct {
		in  *saga.Instance[transfer]
		err error
	}
	res := make(chan result, 1)
	go func() {
		in, err := saga.WaitFor(context.Background(), cs, sg, "t1", func(in *saga.Instance[transfer]) bool {
			if calls.Add(1) == 1 {
				close(loaded)
			}
			return in.Status.Final()
		})
		res <- result{in, err}
	}()
	<-loaded // WaitFor has read the head: the appends below move it
	// Appends to a wallet wake WaitFor, which only reads t1's version.
	for i := range 3 {
		if _, err := f.repo.Execute(context.Background(), "b", walletCmd{Op: "credit", Amount: 1}); err != nil {
			t.Fatal(err)
		}
		if v := <-cs.versions; v != 0 {
			t.Fatalf("wake %d: instance version %d, want 0", i, v)
		}
	}
	if r, c := cs.reads.Load(), calls.Load(); r != 1 || c != 1 {
		t.Fatalf("after 3 unrelated appends: %d loads and %d calls of done, want 1 and 1", r, c)
	}
	go func() { // drain the version reads from here on
		for range cs.versions {
		}
	}()
	f.run(t, store, sg)
	requestTransfer(t, store, "t1", "a", "b", 30)
	r := <-res
	close(cs.versions)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.in.Status != saga.Completed || cs.reads.Load() < 2 {
		t.Errorf("returned %s after %d loads, want completed after at least 2", r.in.Status, cs.reads.Load())
	}
}
