package projection_test

import (
	"context"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// TestProjectionDeletedStreams rebuilds a projection after a soft delete:
// with SkipDeletedStreams it skips the deleted account's events, and
// OnStreamDeleted hears of the tombstone; without them it handles every
// event and never sees the tombstone.
func TestProjectionDeletedStreams(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	for _, acct := range []string{"gone", "kept"} {
		if _, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "account", ID: acct}, Expected: runtime.NoStream,
			Events: []runtime.EventData{{Name: "Opened", Data: []byte("owner-" + acct)}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := deposit(ctx, store, acct, 5); err != nil {
			t.Fatal(err)
		}
	}
	gone := runtime.StreamID{Type: "account", ID: "gone"}
	res, err := lifecycle.DeleteStream(ctx, store, gone, runtime.SoftDelete)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told []runtime.Tombstone
	skipping, plain := newModel(), newModel()
	g := projection.NewGroup(store)
	if err := g.Add(skipping.projection("skipping", false), projection.SkipDeletedStreams(),
		projection.OnStreamDeleted(func(_ context.Context, tomb runtime.Tombstone) error {
			mu.Lock()
			told = append(told, tomb)
			mu.Unlock()
			return nil
		})); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(plain.projection("plain", false)); err != nil {
		t.Fatal(err)
	}
	stop := startGroup(t, g)
	waitFor(t, g, "skipping", res.Tombstone.Position)
	waitFor(t, g, "plain", res.Tombstone.Position)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := skipping.view(); got != "map[kept:owner-kept] map[owner-kept:5]" {
		t.Errorf("with SkipDeletedStreams the model is %s; want the kept account only", got)
	}
	if got := plain.view(); got != "map[gone:owner-gone kept:owner-kept] map[owner-gone:5 owner-kept:5]" {
		t.Errorf("without options the model is %s; want both accounts", got)
	}
	if len(told) != 1 || told[0] != res.Tombstone {
		t.Errorf("OnStreamDeleted was told %+v; want the one tombstone %+v", told, res.Tombstone)
	}
}
