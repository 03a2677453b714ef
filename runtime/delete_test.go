package runtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/memory"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/lifecycle"
)

func TestRepositoryDeletedStream(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []runtime.DeleteMode{runtime.SoftDelete, runtime.HardDelete} {
		t.Run(mode.String(), func(t *testing.T) {
			agg, _ := newCounterAggregate()
			store := memory.New()
			repo := runtime.NewRepository(store, agg)
			if _, err := repo.Execute(ctx, "c1", add{N: 2}, runtime.IdempotencyKey("k1")); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Execute(ctx, "c1", add{N: 3}); err != nil {
				t.Fatal(err)
			}
			res, err := lifecycle.DeleteStream(ctx, store, repo.Stream("c1"), mode)
			if err != nil {
				t.Fatal(err)
			}
			isDeleted := func(what string, err error) {
				t.Helper()
				var de *runtime.DeletedError
				if !errors.Is(err, runtime.ErrStreamDeleted) || !errors.As(err, &de) || de.Tombstone != res.Tombstone {
					t.Errorf("%s of the %s-deleted aggregate: %v; want a *DeletedError with its tombstone", what, mode, err)
				}
			}
			_, _, err = repo.Load(ctx, "c1")
			isDeleted("Load", err)
			_, err = repo.Execute(ctx, "c1", add{N: 1})
			isDeleted("Execute", err)
			_, err = repo.Append(ctx, "c1", runtime.AnyVersion, added{N: 1})
			isDeleted("Append", err)
			// A command retried under its key: the first result after a soft
			// delete (the key is kept), the deletion after a hard one.
			v, err := repo.Execute(ctx, "c1", add{N: 2}, runtime.IdempotencyKey("k1"))
			if mode == runtime.SoftDelete && (err != nil || v != 1) {
				t.Errorf("keyed retry after a soft delete = %d, %v; want the first result 1", v, err)
			}
			if mode == runtime.HardDelete {
				isDeleted("keyed Execute", err)
			}
			var n int
			for _, err := range repo.Events(ctx, "c1", 0) {
				if err != nil {
					isDeleted("Events", err)
					break
				}
				n++
			}
			if want := map[runtime.DeleteMode]int{runtime.SoftDelete: 2, runtime.HardDelete: 0}[mode]; n != want {
				t.Errorf("Events yielded %d events before the deletion, want %d", n, want)
			}
			if _, _, err := repo.Load(ctx, "c2"); err != nil {
				t.Errorf("Load of another aggregate: %v", err)
			}
		})
	}
}

func TestTombstoneOfRejectsDamage(t *testing.T) {
	good := lifecycle.TombstoneRecord(runtime.Tombstone{Stream: runtime.StreamID{Type: "T", ID: "x"}, Mode: runtime.HardDelete, Version: 3, Events: 2, Removed: 2})
	if _, err := runtime.TombstoneOf(good); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty": nil, "format": {9, 2, 0, 0}, "mode": {1, 9, 0, 0}, "truncated": {1, 2, 0x80}, "trailing": {1, 2, 0, 0, 0},
	} {
		rec := good
		rec.Data = data
		if _, err := runtime.TombstoneOf(rec); !errors.Is(err, runtime.ErrCorrupt) {
			t.Errorf("%s: %v; want ErrCorrupt", name, err)
		}
	}
	if _, err := runtime.TombstoneOf(runtime.Record{Name: "Other"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("TombstoneOf(not a tombstone): %v; want ErrInvalid", err)
	}
}
