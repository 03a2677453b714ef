package lifecycle_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// appendN appends n events to stream.
func appendN(ctx context.Context, store runtime.Store, stream runtime.StreamID, n int) {
	events := make([]runtime.EventData, n)
	for i := range events {
		events[i] = runtime.EventData{Name: "Deposited", Data: []byte{0x01}}
	}
	if _, err := store.Append(ctx, runtime.AppendRequest{Stream: stream, Expected: runtime.AnyVersion, Events: events}); err != nil {
		panic(err)
	}
}

// A hard delete, planned first: the dry run writes nothing, the delete
// leaves the stream's tombstone, and the stream then refuses appends.
func ExampleDeleteStream() {
	ctx := context.Background()
	store := memory.New()
	account := runtime.StreamID{Type: "Account", ID: "a-1"}
	appendN(ctx, store, account, 3)

	plan, err := lifecycle.PlanDelete(ctx, store, account, runtime.HardDelete)
	if err != nil {
		panic(err)
	}
	fmt.Println("would remove", plan.Events, "events")

	res, err := lifecycle.DeleteStream(ctx, store, account, runtime.HardDelete)
	if err != nil {
		panic(err)
	}
	fmt.Println("tombstone at version", res.Tombstone.Version)

	_, err = store.Append(ctx, runtime.AppendRequest{Stream: account, Expected: runtime.AnyVersion,
		Events: []runtime.EventData{{Name: "Deposited", Data: []byte{0x01}}}})
	fmt.Println("append after the delete:", errors.Is(err, runtime.ErrStreamDeleted))
	// Output:
	// would remove 3 events
	// tombstone at version 4
	// append after the delete: true
}

// Before truncating the log, PlanTruncation names the streams that would
// lose events no snapshot covers; with a snapshot the plan is clear.
func ExamplePlanTruncation() {
	ctx := context.Background()
	store := memory.New()
	account := runtime.StreamID{Type: "Account", ID: "a-1"}
	appendN(ctx, store, account, 3)
	appendN(ctx, store, runtime.StreamID{Type: "Account", ID: "a-2"}, 1)

	plan, err := lifecycle.PlanTruncation(ctx, store, 3)
	if err != nil {
		panic(err)
	}
	fmt.Println("events:", plan.Events, "uncovered:", plan.Uncovered)

	if err := store.SaveSnapshot(ctx, runtime.Snapshot{Stream: account, Version: 3, Schema: "account-v1", Data: []byte{0x90}}); err != nil {
		panic(err)
	}
	if plan, err = lifecycle.PlanTruncation(ctx, store, 3); err != nil {
		panic(err)
	}
	fmt.Println("uncovered after the snapshot:", plan.UncoveredCount)

	res, err := store.TruncateLog(ctx, plan.Through)
	if err != nil {
		panic(err)
	}
	fmt.Println("removed", res.Removed, "events")
	// Output:
	// events: 3 uncovered: [Account/"a-1"]
	// uncovered after the snapshot: 0
	// removed 3 events
}
