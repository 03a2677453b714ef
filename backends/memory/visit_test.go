package memory_test

import (
	"context"
	"fmt"
	goruntime "runtime"
	"testing"
	"unsafe"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/internal/ops/fixture/account"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

// TestStableViewsNeverChange: VisitStream marks its views Stable, Load
// decodes strings from the store's own bytes, and those strings stay what
// they were through everything the store does afterwards: appends that
// open new arenas, soft and hard deletes of their streams, crypto-shredding,
// truncation of the log, collections and Close.
func TestStableViewsNeverChange(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	repo := account.NewAccountRepository(s, runtime.WithSnapshotEvery(0))
	const streams = 40
	ownerOf := func(i int) string { return fmt.Sprintf("owner-%03d-of-a-stable-view", i) }
	for i := range streams {
		if _, err := repo.Append(ctx, fmt.Sprint(i), runtime.NoStream,
			account.Opened{Owner: ownerOf(i)}, account.Deposited{Amount: 1, Reference: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	owners := make([]string, streams)
	for i := range streams {
		id := fmt.Sprint(i)
		a, v, err := repo.Load(ctx, id)
		if err != nil || v != 2 || a.Owner != ownerOf(i) {
			t.Fatalf("Load(%s) = %+v, %d, %v", id, a, v, err)
		}
		owners[i] = a.Owner
		// The owner is the store's own bytes, not a copy.
		var body []byte
		err = s.VisitStream(ctx, runtime.StreamID{Type: account.AccountStreamType, ID: id}, 0, func(e *runtime.EventView) error {
			if !e.Stable {
				t.Errorf("stream %s version %d: view not marked Stable", id, e.Version)
			}
			if e.Version == 1 {
				body = e.Data // Stable: the bytes may be kept
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		p, start := uintptr(unsafe.Pointer(unsafe.StringData(a.Owner))), uintptr(unsafe.Pointer(&body[0]))
		if p < start || p+uintptr(len(a.Owner)) > start+uintptr(len(body)) {
			t.Errorf("Load(%s): Owner is a copy, not a slice of the stored body", id)
		}
	}

	// Appends that fill several arenas.
	for i := range 3000 {
		if _, err := repo.Append(ctx, fmt.Sprintf("more-%d", i%30), runtime.AnyVersion,
			account.Deposited{Amount: 1, Reference: fmt.Sprintf("%064d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stream := func(i int) runtime.StreamID {
		return runtime.StreamID{Type: account.AccountStreamType, ID: fmt.Sprint(i)}
	}
	for i := range 20 {
		mode := runtime.HardDelete
		if i%4 == 0 {
			mode = runtime.SoftDelete
		}
		if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: stream(i), Mode: mode}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteStream(ctx, lifecycle.DeleteRequest{Stream: stream(0), Mode: runtime.HardDelete}); err != nil {
		t.Fatal(err) // hard after soft
	}
	for i := 20; i < 30; i++ {
		key, err := runtime.NewDataKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SubjectKey(ctx, "subject", stream(i), key); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ForgetSubject(ctx, "subject"); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TruncateLog(ctx, head-1); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i, o := range owners {
			if o != ownerOf(i) {
				t.Fatalf("%s: owner of stream %d is %q, want %q", when, i, o, ownerOf(i))
			}
		}
	}
	check("after appends, deletes, shredding and truncation")
	var garbage [][]byte
	for range 2 {
		goruntime.GC()
		for range 1000 {
			garbage = append(garbage, make([]byte, 4<<10))
		}
	}
	_ = garbage
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	goruntime.GC()
	check("after collections and Close")
}
