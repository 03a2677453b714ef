package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestSubscribeErrorPrefixOnce: the error ending a subscription names it
// once as cqrsgen's ("cqrsgen: subscription …: cqrsgen: wait …" was the
// text before).
func TestSubscribeErrorPrefixOnce(t *testing.T) {
	store := memory.New()
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range runtime.Subscribe(ctx, store, 0) {
		if err == nil {
			continue
		}
		if strings.Count(err.Error(), "cqrsgen:") != 1 || !errors.Is(err, context.Canceled) {
			t.Fatalf("subscription error %q: want one cqrsgen: prefix and context.Canceled", err)
		}
		return
	}
	t.Fatal("the subscription ended without an error")
}
