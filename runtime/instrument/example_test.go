package instrument_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/instrument"
)

// Counting a store's calls by operation and outcome; metrics/prometheus
// does the same with counters and histograms.
func ExampleNew() {
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string]int{}
	store := instrument.New(memory.New(), instrument.MetricsFunc(func(c instrument.Call) {
		mu.Lock()
		defer mu.Unlock()
		calls[fmt.Sprintf("%s/%s", c.Op, c.Outcome)]++
	}))

	stream := runtime.StreamID{Type: "Account", ID: "a-1"}
	req := runtime.AppendRequest{Stream: stream, Expected: runtime.NoStream,
		Events: []runtime.EventData{{Name: "Opened", Data: []byte{0x80}}}}
	_, _ = store.Append(ctx, req)
	_, _ = store.Append(ctx, req) // the stream exists now: a conflict
	for range store.ReadStream(ctx, stream, 0) {
	}

	mu.Lock()
	defer mu.Unlock()
	fmt.Println(calls["append/ok"], calls["append/conflict"], calls["read_stream/ok"])
	// Output: 1 1 1
}
