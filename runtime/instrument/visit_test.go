package instrument_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/backends/pebble"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
	"github.com/cqrsgen/cqrsgen/runtime/telemetry"
)

// noVisitor hides the wrapped store's StreamVisitor (and every other
// optional capability): a store with ReadStream alone.
type noVisitor struct{ runtime.Store }

// spyVisitor counts the visits that reach the store's VisitStream.
type spyVisitor struct {
	*memory.Store
	mu     sync.Mutex
	visits int
}

func (s *spyVisitor) VisitStream(ctx context.Context, st runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	s.mu.Lock()
	s.visits++
	s.mu.Unlock()
	return s.Store.VisitStream(ctx, st, after, fn)
}

// bases are the stores the wrapper is tested over: both stores with a
// StreamVisitor, both behind a wrapper that hides it, and a visitor that
// counts.
func bases() []struct {
	name string
	open func(t *testing.T) runtime.Store
} {
	return []struct {
		name string
		open func(t *testing.T) runtime.Store
	}{
		{"memory", func(*testing.T) runtime.Store { return memory.New() }},
		{"pebble", func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"no-visitor", func(*testing.T) runtime.Store { return noVisitor{memory.New()} }},
		// Pebble's ReadStream behind the fallback: its slab copies must
		// stay unchanged once yielded (Visit/StableBytesKept checks it).
		{"pebble-no-visitor", func(t *testing.T) runtime.Store {
			s, err := pebble.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return noVisitor{s}
		}},
		{"spy", func(*testing.T) runtime.Store { return &spyVisitor{Store: memory.New()} }},
	}
}

// TestInstrumentConformance runs the store contract, the Visit rules
// among it, against instrumented stores: over a store without a
// StreamVisitor the Visit rules check the ReadStream fallback (its views
// Stable, their bytes unchanged through appends, visits and Close).
func TestInstrumentConformance(t *testing.T) {
	for _, b := range bases() {
		if b.name == "spy" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			storetest.Run(t, storetest.Factory{Open: func(t *testing.T) runtime.Store {
				return instrument.New(b.open(t), &recorder{})
			}})
		})
	}
}

// loadFixture appends an account stream of n events (an Opened, then
// deposits) among another stream's, through repo.
func loadFixture(t *testing.T, repo *account.AccountRepository, id string, n int) {
	t.Helper()
	ctx := t.Context()
	if _, err := repo.Append(ctx, id, runtime.NoStream, account.Opened{Owner: "owner of " + id}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := repo.Append(ctx, id, uint64(i), account.Deposited{Amount: int64(100 + i), Reference: fmt.Sprint("ref-", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Append(ctx, "other", runtime.AnyVersion, account.Deposited{Amount: 1, Reference: "o"}); err != nil {
			t.Fatal(err)
		}
	}
}

// spans counts the spans started through it, by kind.
type spans struct {
	mu    sync.Mutex
	kinds map[telemetry.SpanKind]int
	ended int
}

func (s *spans) Start(ctx context.Context, st telemetry.SpanStart) (context.Context, telemetry.Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = map[telemetry.SpanKind]int{}
	}
	s.kinds[st.Kind]++
	return ctx, s
}

func (s *spans) End(error) {
	s.mu.Lock()
	s.ended++
	s.mu.Unlock()
}

func (*spans) Inject(context.Context, map[string]string) {}

// TestInstrumentLoadThroughVisit: a Load through an instrumented store
// reads through its VisitStream (reaching the wrapped store's own, when it
// has one) to the state a Load through the bare store finds, and reports
// the read exactly as a Load through ReadStream does: one OpReadStream call
// with the same records, duration and outcome, and the same spans.
func TestInstrumentLoadThroughVisit(t *testing.T) {
	for _, b := range bases() {
		for _, n := range []int{1, 40} {
			t.Run(fmt.Sprintf("%s/events=%d", b.name, n), func(t *testing.T) {
				ctx := t.Context()
				bare := b.open(t)
				defer bare.Close()
				loadFixture(t, account.NewAccountRepository(bare, runtime.WithSnapshotEvery(0)), "a", n)
				want, wantV, err := account.NewAccountRepository(bare).Load(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				if spy, ok := bare.(*spyVisitor); ok {
					spy.visits = 0
					defer func() {
						if spy.visits != 1 {
							t.Errorf("the instrumented Load made %d visits of the wrapped store's VisitStream, want 1", spy.visits)
						}
					}()
				}
				// visit is the instrumented store; read hides its
				// StreamVisitor, so that its Load reads through ReadStream.
				var calls [2][]instrument.Call
				var traced [2]*spans
				for side := range 2 {
					rec, clock, tr := &recorder{}, &stepClock{}, &spans{}
					var s runtime.Store = instrument.New(bare, rec, instrument.WithClock(clock.now), instrument.WithTracer(tr))
					if side == 1 {
						s = struct {
							runtime.Store
							telemetry.Instrumented
						}{s, s.(telemetry.Instrumented)}
					}
					got, v, err := account.NewAccountRepository(s).Load(ctx, "a")
					if err != nil {
						t.Fatal(err)
					}
					if v != wantV || !reflect.DeepEqual(got, want) {
						t.Errorf("side %d: loaded %+v at version %d, the bare store %+v at %d", side, got, v, want, wantV)
					}
					calls[side], traced[side] = rec.take(), tr
				}
				var reads []instrument.Call
				for _, c := range calls[0] {
					if c.Op == instrument.OpReadStream {
						reads = append(reads, c)
					}
				}
				if len(reads) != 1 || reads[0].Records != n || reads[0].StreamType != account.AccountStreamType || reads[0].Outcome != instrument.OutcomeOK {
					t.Errorf("the visit reported %+v, want one OpReadStream of %d records", reads, n)
				}
				if !reflect.DeepEqual(calls[0], calls[1]) {
					t.Errorf("Load through VisitStream reported\n%+v\nthrough ReadStream\n%+v", calls[0], calls[1])
				}
				if !reflect.DeepEqual(traced[0].kinds, traced[1].kinds) || traced[0].ended != traced[1].ended || traced[0].kinds[telemetry.SpanLoad] != 1 {
					t.Errorf("spans through VisitStream %v (%d ended), through ReadStream %v (%d ended)",
						traced[0].kinds, traced[0].ended, traced[1].kinds, traced[1].ended)
				}
			})
		}
	}
}

// failing is corruptAfter with a StreamVisitor that fails alike.
type failing struct{ corruptAfter }

func (f failing) VisitStream(ctx context.Context, st runtime.StreamID, after uint64, fn func(*runtime.EventView) error) error {
	if err := f.Store.VisitStream(ctx, st, after, fn); err != nil {
		return err
	}
	return f.err
}

// TestInstrumentVisitReportsAsReadStream: for every way a read ends (the
// end of the stream, a missing stream, bad input, a done context, a closed
// store, a damaged record, the consumer stopping), VisitStream returns
// what ReadStream yields and reports the same Call.
func TestInstrumentVisitReportsAsReadStream(t *testing.T) {
	damaged := &runtime.DecodeError{Stream: acct, Version: 4, What: "envelope", Err: errors.New("checksum mismatch")}
	stop := errors.New("consumer stops")
	cases := []struct {
		name   string
		stream runtime.StreamID
		after  uint64
		stopAt int // the consumer stops at this record (1-based); 0: never
		closed bool
		done   bool
		err    error // the store fails after its records
	}{
		{name: "all", stream: acct},
		{name: "after", stream: acct, after: 2},
		{name: "missing", stream: runtime.StreamID{Type: "account", ID: "none"}},
		{name: "invalid", stream: runtime.StreamID{Type: "", ID: "x"}},
		{name: "done context", stream: acct, done: true},
		{name: "closed", stream: acct, closed: true},
		{name: "damaged", stream: acct, err: damaged},
		{name: "consumer stops", stream: acct, stopAt: 2},
		{name: "consumer stops at last", stream: acct, stopAt: 3},
	}
	for _, visitor := range []bool{true, false} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("visitor=%v/%s", visitor, c.name), func(t *testing.T) {
				var got [2][]instrument.Call
				var errs [2]error
				var views [2]int
				for side := range 2 { // 0: VisitStream, 1: ReadStream
					mem := memory.New()
					for i := range 3 {
						if _, err := mem.Append(t.Context(), runtime.AppendRequest{Stream: acct, Expected: uint64(i), Events: []runtime.EventData{ev("E")}}); err != nil {
							t.Fatal(err)
						}
					}
					var inner runtime.Store = mem
					if c.err != nil {
						inner = failing{corruptAfter{mem, c.err}}
					}
					if !visitor {
						inner = noVisitor{inner}
						if c.err != nil {
							inner = noVisitor{corruptAfter{mem, c.err}}
						}
					}
					rec, clock := &recorder{}, &stepClock{}
					s := instrument.New(inner, rec, instrument.WithClock(clock.now))
					if c.closed {
						_ = mem.Close()
					}
					ctx := t.Context()
					if c.done {
						var cancel context.CancelFunc
						ctx, cancel = context.WithCancel(ctx)
						cancel()
					}
					if side == 0 {
						errs[0] = s.VisitStream(ctx, c.stream, c.after, func(*runtime.EventView) error {
							views[0]++
							clock.now() // the consumer's time, excluded
							if views[0] == c.stopAt {
								return stop
							}
							return nil
						})
						if errors.Is(errs[0], stop) {
							errs[0] = nil
						}
					} else {
						for _, err := range s.ReadStream(ctx, c.stream, c.after) {
							if err != nil {
								errs[1] = err
								break
							}
							views[1]++
							clock.now()
							if views[1] == c.stopAt {
								break
							}
						}
					}
					got[side] = rec.take()
					_ = mem.Close()
				}
				if views[0] != views[1] || fmt.Sprint(errs[0]) != fmt.Sprint(errs[1]) {
					t.Errorf("VisitStream showed %d events and ended with %v; ReadStream %d, %v", views[0], errs[0], views[1], errs[1])
				}
				if len(got[0]) != 1 || len(got[1]) != 1 {
					t.Fatalf("VisitStream reported %+v, ReadStream %+v; want one call each", got[0], got[1])
				}
				v, r := got[0][0], got[1][0]
				if v.Op != r.Op || v.StreamType != r.StreamType || v.Duration != r.Duration || v.Records != r.Records ||
					v.Outcome != r.Outcome || fmt.Sprint(v.Err) != fmt.Sprint(r.Err) {
					t.Errorf("VisitStream reported %+v, ReadStream %+v", v, r)
				}
			})
		}
	}
}

// corruptAfter is a store without a StreamVisitor whose ReadStream yields
// the stream's records and then err.
type corruptAfter struct {
	*memory.Store
	err error
}

func (c corruptAfter) ReadStream(ctx context.Context, st runtime.StreamID, after uint64) iter.Seq2[runtime.Record, error] {
	return func(yield func(runtime.Record, error) bool) {
		for rec, err := range c.Store.ReadStream(ctx, st, after) {
			if !yield(rec, err) || err != nil {
				return
			}
		}
		yield(runtime.Record{}, c.err)
	}
}
