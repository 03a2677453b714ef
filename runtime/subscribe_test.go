package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
)

func TestSubscribeCatchUpThenLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memory.New()
	ev := []runtime.EventData{{Name: "E", Data: []byte("x")}}
	const before, writers, each = 10, 8, 25
	for i := range before {
		if _, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: fmt.Sprint("pre", i)}, Events: ev}); err != nil {
			t.Fatal(err)
		}
	}
	total := before + writers*each
	got := make(chan uint64, total)
	done := make(chan error, 1)
	go func() {
		for rec, err := range runtime.Subscribe(ctx, store, 0) {
			if err != nil {
				done <- err
				return
			}
			got <- rec.Position
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := runtime.StreamID{Type: "T", ID: fmt.Sprint("w", w)}
				if _, err := store.Append(ctx, runtime.AppendRequest{Stream: id, Expected: uint64(i), Events: ev}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for want := uint64(1); want <= uint64(total); want++ {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("subscription delivered position %d, want %d", p, want)
			}
		case err := <-done:
			t.Fatalf("subscription ended early: %v", err)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v, want context.Canceled", err)
	}
	select {
	case p := <-got:
		t.Fatalf("extra delivery of position %d", p)
	default:
	}
}

func TestSubscribeFromPositionAndClose(t *testing.T) {
	store := memory.New()
	ctx := context.Background()
	for i := range 5 {
		if _, err := store.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "s"}, Expected: uint64(i), Events: []runtime.EventData{{Name: "E"}}}); err != nil {
			t.Fatal(err)
		}
	}
	var positions []uint64
	var endErr error
	sub := runtime.Subscribe(ctx, store, 3)
	for rec, err := range sub {
		if err != nil {
			endErr = err
			break
		}
		positions = append(positions, rec.Position)
		if len(positions) == 2 {
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(positions) != "[4 5]" {
		t.Fatalf("positions after 3 = %v, want [4 5]", positions)
	}
	if !errors.Is(endErr, runtime.ErrClosed) {
		t.Fatalf("subscription on a closed store ended with %v, want ErrClosed", endErr)
	}
}
