package projection_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// totals is a read model: the sum of deposits per account. Its Handle is
// what cqrsgen generates for a //cqrs:projection type: decode by wire name,
// then call the user's On<Event> method.
type totals struct {
	mu  sync.Mutex
	sum map[string]int
}

func (t *totals) handle(_ context.Context, rec runtime.Record) error {
	switch rec.Name {
	case "Deposited":
		n, err := strconv.Atoi(string(rec.Data))
		if err != nil {
			return &runtime.DecodeError{Stream: rec.Stream, Version: rec.Version, Position: rec.Position, What: "event " + rec.Name, Err: err}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.sum[rec.Stream.ID] += n
	}
	return nil
}

func (t *totals) reset(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sum = map[string]int{}
	return nil
}

// A group runs projections from their checkpoints through the whole log
// and then live; WaitFor gives read-your-writes, Status reports progress,
// and Rebuild replays a read model from scratch.
func ExampleGroup() {
	ctx, cancel := context.WithCancel(context.Background())
	store := memory.New()
	appendEvent := func(id, name, data string) uint64 {
		res, err := store.Append(ctx, runtime.AppendRequest{
			Stream:   runtime.StreamID{Type: "account", ID: id},
			Expected: runtime.AnyVersion,
			Events:   []runtime.EventData{{Name: name, Data: []byte(data)}},
		})
		if err != nil {
			panic(err)
		}
		return res.LastPosition
	}
	appendEvent("acc-1", "Deposited", "100")
	appendEvent("acc-2", "Opened", "bob") // not consumed: never handed to Handle
	appendEvent("acc-1", "Deposited", "20")

	model := &totals{sum: map[string]int{}}
	group := projection.NewGroup(store)
	err := group.Add(projection.Projection{
		Name:   "totals",
		Events: []string{"Deposited"},
		Handle: model.handle,
		Reset:  model.reset,
	})
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- group.Run(ctx) }()

	// Live: wait until the projection has seen this append.
	last := appendEvent("acc-2", "Deposited", "5")
	if err := group.WaitFor(ctx, "totals", last); err != nil {
		panic(err)
	}
	model.mu.Lock()
	fmt.Println("totals:", model.sum)
	model.mu.Unlock()

	// Rebuild: reset, checkpoint to zero, replay; nothing counted twice.
	if err := group.Rebuild(ctx, "totals"); err != nil {
		panic(err)
	}
	if err := group.WaitFor(ctx, "totals", last); err != nil {
		panic(err)
	}
	model.mu.Lock()
	fmt.Println("after rebuild:", model.sum)
	model.mu.Unlock()

	st, err := group.Status(ctx, "totals")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s at %d of %d, lag %d, rebuilds %d\n", st.Name, st.State, st.Position, st.Head, st.Lag, st.Rebuilds)

	cancel()
	fmt.Println("run:", <-done)
	checkpoint, _ := store.LoadCheckpoint(context.Background(), "totals")
	fmt.Println("checkpoint:", checkpoint)
	// Output:
	// totals: map[acc-1:120 acc-2:5]
	// after rebuild: map[acc-1:120 acc-2:5]
	// totals: running at 4 of 4, lag 0, rebuilds 1
	// run: <nil>
	// checkpoint: 4
}
