package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// A hand-written aggregate standing in for generated code: a counter with
// two events and two commands, and a byte codec small enough to read.

type counter struct {
	Total   int64
	Applied int // how many events were applied since the zero state
}

type counterEvent interface{ isCounterEvent() }

type added struct{ N int64 }
type cleared struct{}

func (added) isCounterEvent()   {}
func (cleared) isCounterEvent() {}

type counterCommand interface{ isCounterCommand() }

type add struct{ N int64 }
type clear struct{}

func (add) isCounterCommand()   {}
func (clear) isCounterCommand() {}

var errNegative = errors.New("counter: cannot add a negative amount")

func newCounterAggregate() (*runtime.Aggregate[counter, counterEvent, counterCommand], *atomic.Int64) {
	decoded := new(atomic.Int64)
	agg := &runtime.Aggregate[counter, counterEvent, counterCommand]{
		Type:        "Counter",
		StateSchema: "counter-v1",
		Apply: func(s *counter, e counterEvent) {
			s.Applied++
			switch e := e.(type) {
			case added:
				s.Total += e.N
			case cleared:
				s.Total = 0
			}
		},
		Decide: func(s *counter, c counterCommand) ([]counterEvent, error) {
			switch c := c.(type) {
			case add:
				if c.N < 0 {
					return nil, errNegative
				}
				if c.N == 0 {
					return nil, nil
				}
				return []counterEvent{added(c)}, nil
			case clear:
				return []counterEvent{cleared{}}, nil
			}
			return nil, fmt.Errorf("unknown command %T", c)
		},
		EncodeEvent: func(e counterEvent) (runtime.EventData, error) {
			switch e := e.(type) {
			case added:
				return runtime.EventData{Name: "Added", Schema: 1, Data: binary.AppendVarint(nil, e.N)}, nil
			case cleared:
				return runtime.EventData{Name: "Cleared", Schema: 1}, nil
			}
			return runtime.EventData{}, fmt.Errorf("unknown event %T", e)
		},
		DecodeEvent: func(name string, schema uint32, data []byte) (counterEvent, error) {
			decoded.Add(1)
			switch name {
			case "Added":
				n, k := binary.Varint(data)
				if k <= 0 || k != len(data) {
					return nil, errors.New("bad varint")
				}
				return added{N: n}, nil
			case "Cleared":
				return cleared{}, nil
			}
			return nil, &runtime.UnknownEventError{Name: name, Schema: schema}
		},
		EncodeState: func(s *counter) ([]byte, error) { return binary.AppendVarint(nil, s.Total), nil },
		DecodeState: func(data []byte, s *counter) error {
			n, k := binary.Varint(data)
			if k <= 0 || k != len(data) {
				return errors.New("bad snapshot")
			}
			s.Total = n
			return nil
		},
	}
	return agg, decoded
}

func TestRepositoryLoadMissing(t *testing.T) {
	agg, _ := newCounterAggregate()
	repo := runtime.NewRepository(memory.New(), agg)
	s, v, err := repo.Load(context.Background(), "nobody")
	if err != nil || v != 0 || s == nil || s.Total != 0 || s.Applied != 0 {
		t.Fatalf("Load(missing) = %+v, %d, %v; want zero state, 0, nil", s, v, err)
	}
}

func TestRepositoryAppendExpectedVersions(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	repo := runtime.NewRepository(memory.New(), agg)

	v, err := repo.Append(ctx, "c1", runtime.NoStream, added{N: 2}, added{N: 3})
	if err != nil || v != 2 {
		t.Fatalf("Append = %d, %v; want 2, nil", v, err)
	}
	_, err = repo.Append(ctx, "c1", runtime.NoStream, added{N: 1})
	var ce *runtime.ConflictError
	if !errors.Is(err, runtime.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("Append on existing stream with NoStream: %v, want a ConflictError", err)
	}
	if ce.Expected != runtime.NoStream || ce.Actual != 2 || ce.Stream.ID != "c1" || ce.Stream.Type != "Counter" {
		t.Fatalf("ConflictError = %+v", ce)
	}
	if _, err := repo.Append(ctx, "c1", 1, added{N: 1}); !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("Append with stale version: %v, want ErrConflict", err)
	}
	if v, err := repo.Append(ctx, "c1", runtime.AnyVersion, cleared{}); err != nil || v != 3 {
		t.Fatalf("Append AnyVersion = %d, %v", v, err)
	}
	if _, err := repo.Append(ctx, "c1", 3); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Append of no events: %v, want ErrInvalid", err)
	}
	s, v, err := repo.Load(ctx, "c1")
	if err != nil || v != 3 || s.Total != 0 || s.Applied != 3 {
		t.Fatalf("Load = %+v, %d, %v", s, v, err)
	}
}

func TestRepositoryExecute(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	repo := runtime.NewRepository(store, agg)

	if v, err := repo.Execute(ctx, "c", add{N: 5}); err != nil || v != 1 {
		t.Fatalf("Execute = %d, %v; want 1", v, err)
	}
	// A rejected command returns the Handle error as is and appends nothing.
	if _, err := repo.Execute(ctx, "c", add{N: -1}); err != errNegative {
		t.Fatalf("Execute(rejected) = %v, want errNegative itself", err)
	}
	// A command that decides nothing returns the current version.
	if v, err := repo.Execute(ctx, "c", add{N: 0}); err != nil || v != 1 {
		t.Fatalf("Execute(no-op) = %d, %v; want 1", v, err)
	}
	if v, _ := store.StreamVersion(ctx, runtime.StreamID{Type: "Counter", ID: "c"}); v != 1 {
		t.Fatalf("stream version = %d after a rejected and a no-op command, want 1", v)
	}
}

func TestRepositoryExecuteConcurrentSameID(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	// Two repositories over one store behave like two processes: their
	// commands really conflict and must be retried.
	repos := []*runtime.Repository[counter, counterEvent, counterCommand]{
		runtime.NewRepository(store, agg, runtime.WithRetries(1000)),
		runtime.NewRepository(store, agg, runtime.WithRetries(1000)),
	}
	const workers, each = 32, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := repos[w%2].Execute(ctx, "hot", add{N: 1}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Execute: %v", err)
	}
	s, v, err := repos[0].Load(ctx, "hot")
	if err != nil || v != workers*each || s.Total != workers*each {
		t.Fatalf("after %d commands: state %+v version %d err %v", workers*each, s, v, err)
	}
	n := 0
	for env, err := range repos[1].Events(ctx, "hot", 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if env.Version != uint64(n) {
			t.Fatalf("event %d has version %d", n, env.Version)
		}
	}
	if n != workers*each {
		t.Fatalf("read %d events, want %d", n, workers*each)
	}
}

func TestRepositoryIdempotency(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	repo := runtime.NewRepository(store, agg)

	v1, err := repo.Execute(ctx, "c", add{N: 1}, runtime.IdempotencyKey("k-1"))
	if err != nil || v1 != 1 {
		t.Fatalf("first Execute = %d, %v", v1, err)
	}
	if _, err := repo.Execute(ctx, "c", add{N: 10}); err != nil {
		t.Fatal(err)
	}
	// A repeat, also through a fresh repository (a restarted process),
	// returns the first result and decides nothing.
	for _, r := range []*runtime.Repository[counter, counterEvent, counterCommand]{repo, runtime.NewRepository(store, agg)} {
		v, err := r.Execute(ctx, "c", add{N: 1}, runtime.IdempotencyKey("k-1"))
		if err != nil || v != v1 {
			t.Fatalf("repeated Execute = %d, %v; want %d", v, err, v1)
		}
	}
	s, v, _ := repo.Load(ctx, "c")
	if v != 2 || s.Total != 11 {
		t.Fatalf("state after repeats = %+v at %d, want total 11 at 2", s, v)
	}
	// The same key on another aggregate is a caller bug, reported.
	if _, err := repo.Execute(ctx, "other", add{N: 1}, runtime.IdempotencyKey("k-1")); !errors.Is(err, runtime.ErrDuplicate) {
		t.Fatalf("key reused on another stream: %v, want ErrDuplicate", err)
	}
	// A rejected command records nothing: the key can be used again.
	if _, err := repo.Execute(ctx, "c", add{N: -1}, runtime.IdempotencyKey("k-2")); err != errNegative {
		t.Fatalf("rejected: %v", err)
	}
	if v, err := repo.Execute(ctx, "c", add{N: 2}, runtime.IdempotencyKey("k-2")); err != nil || v != 3 {
		t.Fatalf("retry after rejection = %d, %v; want 3", v, err)
	}
	// A no-op command is recorded too.
	if v, err := repo.Execute(ctx, "c", add{N: 0}, runtime.IdempotencyKey("k-3")); err != nil || v != 3 {
		t.Fatalf("no-op = %d, %v", v, err)
	}
	if rec, err := store.LoadIdempotency(ctx, "k-3"); err != nil || rec.Version != 3 {
		t.Fatalf("no-op idempotency record = %+v, %v", rec, err)
	}
}

func TestRepositoryIdempotencyConcurrent(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	const n = 16
	var wg sync.WaitGroup
	versions := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := runtime.NewRepository(store, agg) // separate "processes"
			v, err := repo.Execute(ctx, "c", add{N: 1}, runtime.IdempotencyKey("once"))
			if err != nil {
				t.Error(err)
			}
			versions[i] = v
		}()
	}
	wg.Wait()
	for i, v := range versions {
		if v != 1 {
			t.Fatalf("goroutine %d got version %d, want 1 (the first result)", i, v)
		}
	}
	if v, _ := store.StreamVersion(ctx, runtime.StreamID{Type: "Counter", ID: "c"}); v != 1 {
		t.Fatalf("%d events appended under one key, want 1", v)
	}
}

func TestRepositorySnapshots(t *testing.T) {
	ctx := context.Background()
	agg, decoded := newCounterAggregate()
	agg.SnapshotEvery = 3
	store := memory.New()
	var reported []error
	repo := runtime.NewRepository(store, agg, runtime.WithErrorHandler(func(err error) { reported = append(reported, err) }))
	stream := runtime.StreamID{Type: "Counter", ID: "s"}

	for i := range 7 {
		if _, err := repo.Execute(ctx, "s", add{N: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := store.LoadSnapshot(ctx, stream)
	if err != nil || snap.Version != 6 || snap.Schema != "counter-v1" {
		t.Fatalf("snapshot = %+v, %v; want version 6", snap, err)
	}
	decoded.Store(0)
	s, v, err := repo.Load(ctx, "s")
	if err != nil || v != 7 || s.Total != 28 {
		t.Fatalf("Load = %+v, %d, %v", s, v, err)
	}
	if got := decoded.Load(); got != 1 {
		t.Fatalf("Load decoded %d events, want only the 1 after the snapshot", got)
	}
	// Append (not Execute) crossing a boundary snapshots too.
	if _, err := repo.Append(ctx, "s", 7, added{N: 1}, added{N: 1}); err != nil {
		t.Fatal(err)
	}
	if snap, _ := store.LoadSnapshot(ctx, stream); snap.Version != 9 {
		t.Fatalf("snapshot after Append at version %d, want 9", snap.Version)
	}

	// A snapshot of another state shape is ignored: rebuilt from events.
	other := *agg
	other.StateSchema = "counter-v2"
	decoded.Store(0)
	s, v, err = runtime.NewRepository(store, &other).Load(ctx, "s")
	if err != nil || v != 9 || s.Total != 30 || decoded.Load() != 9 {
		t.Fatalf("Load with new schema = %+v, %d, %v, decoded %d; want rebuild of all 9", s, v, err, decoded.Load())
	}

	// An undecodable snapshot is reported and ignored.
	if err := store.SaveSnapshot(ctx, runtime.Snapshot{Stream: stream, Version: 10, Schema: "counter-v1", Data: []byte{0xff}}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Append(ctx, "s", 9, added{N: 1}); err != nil {
		t.Fatal(err)
	}
	reported = nil
	s, v, err = repo.Load(ctx, "s")
	if err != nil || v != 10 || s.Total != 31 {
		t.Fatalf("Load over a corrupt snapshot = %+v, %d, %v", s, v, err)
	}
	if len(reported) != 1 || !errors.Is(reported[0], runtime.ErrCorrupt) {
		t.Fatalf("reported %v, want one ErrCorrupt", reported)
	}
}

func TestRepositoryEventsAndDecodeErrors(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	repo := runtime.NewRepository(store, agg)
	md := map[string]string{"user": "ann"}
	if _, err := repo.Append(runtime.ContextWithMetadata(ctx, md), "e", runtime.NoStream, added{N: 1}, added{N: 2}, cleared{}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Execute(ctx, "e", add{N: 4}, runtime.Metadata(map[string]string{"cause": "test"})); err != nil {
		t.Fatal(err)
	}
	var got []runtime.Envelope[counterEvent]
	for env, err := range repo.Events(ctx, "e", 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, env)
	}
	if len(got) != 3 || got[0].Version != 2 || got[0].Event != (added{N: 2}) || got[1].Event != (cleared{}) {
		t.Fatalf("Events(after 1) = %+v", got)
	}
	if got[0].Metadata["user"] != "ann" || got[2].Metadata["cause"] != "test" || got[0].ID != "e" || got[0].Type != "Counter" {
		t.Fatalf("envelope fields = %+v / %+v", got[0], got[2])
	}
	if got[0].Position == 0 || got[1].Position <= got[0].Position || got[0].Time.IsZero() {
		t.Fatalf("positions/time not set: %+v", got)
	}
	// Event ids: made at append, distinct, the store's, and ID stays the
	// aggregate id.
	var recs []runtime.Record
	for rec, err := range store.ReadStream(ctx, runtime.StreamID{Type: "Counter", ID: "e"}, 1) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	for i, env := range got {
		if env.EventID.IsZero() || env.EventID != recs[i].EventID || (i > 0 && env.EventID == got[i-1].EventID) {
			t.Fatalf("envelope %d: event id %s, store's %s", i, env.EventID, recs[i].EventID)
		}
	}

	// A stored event the aggregate does not know is a DecodeError naming
	// stream and version, from Events and from Load alike.
	if _, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "Counter", ID: "e"}, Expected: 4, Events: []runtime.EventData{{Name: "Mystery", Schema: 1}}}); err != nil {
		t.Fatal(err)
	}
	var de *runtime.DecodeError
	var lastErr error
	for _, err := range repo.Events(ctx, "e", 4) {
		lastErr = err
	}
	if !errors.As(lastErr, &de) || de.Version != 5 || de.Stream.ID != "e" {
		t.Fatalf("Events over unknown event: %v", lastErr)
	}
	var ue *runtime.UnknownEventError
	if !errors.As(lastErr, &ue) || ue.Name != "Mystery" {
		t.Fatalf("cause is not UnknownEventError: %v", lastErr)
	}
	if _, _, err := repo.Load(ctx, "e"); !errors.Is(err, runtime.ErrCorrupt) {
		t.Fatalf("Load over unknown event: %v, want ErrCorrupt", err)
	}
}

func TestRepositoryCancelledContext(t *testing.T) {
	agg, _ := newCounterAggregate()
	store := memory.New()
	repo := runtime.NewRepository(store, agg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := repo.Execute(ctx, "c", add{N: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute with cancelled ctx: %v", err)
	}
	if v, _ := store.StreamVersion(context.Background(), runtime.StreamID{Type: "Counter", ID: "c"}); v != 0 {
		t.Fatalf("cancelled Execute wrote %d events", v)
	}
}

// ReportAppend and ContextWithAppendReport tell the caller where its write
// landed, including when the call itself appended nothing.
func TestRepositoryReportsAppend(t *testing.T) {
	ctx := context.Background()
	agg, _ := newCounterAggregate()
	store := memory.New()
	repo := runtime.NewRepository(store, agg)
	// Another stream moves the global positions away from the versions.
	if _, err := repo.Append(ctx, "other", runtime.NoStream, added{N: 1}, added{N: 1}, added{N: 1}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func(*runtime.AppendResult) (uint64, error)
		want runtime.AppendResult
	}{
		{"append", func(res *runtime.AppendResult) (uint64, error) {
			return repo.Append(runtime.ContextWithAppendReport(ctx, res), "c", runtime.NoStream, added{N: 1}, added{N: 2})
		}, runtime.AppendResult{FirstVersion: 1, LastVersion: 2, FirstPosition: 4, LastPosition: 5}},
		{"execute", func(res *runtime.AppendResult) (uint64, error) {
			return repo.Execute(ctx, "c", add{N: 3}, runtime.IdempotencyKey("k"), runtime.ReportAppend(res))
		}, runtime.AppendResult{FirstVersion: 3, LastVersion: 3, FirstPosition: 6, LastPosition: 6}},
		{"repeated key", func(res *runtime.AppendResult) (uint64, error) {
			if _, err := repo.Append(ctx, "other", runtime.AnyVersion, added{N: 1}); err != nil {
				t.Fatal(err)
			}
			return repo.Execute(ctx, "c", add{N: 3}, runtime.IdempotencyKey("k"), runtime.ReportAppend(res))
		}, runtime.AppendResult{LastVersion: 3, LastPosition: 6}},
		{"no events", func(res *runtime.AppendResult) (uint64, error) {
			return repo.Execute(ctx, "c", add{N: 0}, runtime.ReportAppend(res))
		}, runtime.AppendResult{LastVersion: 3, LastPosition: 6}},
		{"empty stream", func(res *runtime.AppendResult) (uint64, error) {
			return repo.Execute(ctx, "new", add{N: 0}, runtime.ReportAppend(res))
		}, runtime.AppendResult{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runtime.AppendResult{FirstVersion: 99, LastVersion: 99, FirstPosition: 99, LastPosition: 99}
			v, err := tc.run(&res)
			if err != nil || v != tc.want.LastVersion || res != tc.want {
				t.Fatalf("= %d, %v, reported %+v; want %d, nil, %+v", v, err, res, tc.want.LastVersion, tc.want)
			}
		})
	}
	// A rejected command reports nothing.
	res := runtime.AppendResult{LastPosition: 42}
	if _, err := repo.Execute(ctx, "c", add{N: -1}, runtime.ReportAppend(&res)); err != errNegative || res.LastPosition != 42 {
		t.Fatalf("rejected Execute = %v, reported %+v; want errNegative and nothing reported", err, res)
	}
}
