package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestConnectionLostMidAppend kills the appender's server connection after
// the append has taken its positions and before it commits, as a network
// failure or a server restart would. The append must return an error and
// be entirely absent afterwards; the store must keep working (the pool
// replaces the dead connection) and positions stay gap-free.
func TestConnectionLostMidAppend(t *testing.T) {
	s := newStore(t)
	reader := openIn(t, s.opt.schema)
	ctx := context.Background()
	st := runtime.StreamID{Type: "T", ID: "lost"}
	if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: storetest.Events(1)}); err != nil {
		t.Fatal(err)
	}

	killed := 0
	s.testHookBeforeCommit = func() {
		// Only this test's appender is idle inside a transaction that has
		// touched this test's own schema.
		conn, err := reader.pool.Acquire(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Release()
		err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE state = 'idle in transaction' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, s.opt.schema).Scan(&killed)
		if err != nil {
			t.Error(err)
		}
	}
	_, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 1, Events: storetest.Events(3), IdempotencyKey: "lost-key"})
	s.testHookBeforeCommit = nil
	if killed != 1 {
		t.Fatalf("terminated %d server connections, want the appender's one", killed)
	}
	if err == nil {
		t.Fatal("append whose connection died before COMMIT reported success")
	}
	if errors.Is(err, runtime.ErrConflict) || errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("append on a lost connection: %v, want a connection error", err)
	}
	t.Logf("append on a lost connection: %v", err)

	// Nothing of it is there: not the events, not the stream head, not the key.
	if v, err := reader.StreamVersion(ctx, st); err != nil || v != 1 {
		t.Fatalf("StreamVersion after the lost append = %d, %v; want 1", v, err)
	}
	if h, err := reader.Head(ctx); err != nil || h != 1 {
		t.Fatalf("Head after the lost append = %d, %v; want 1", h, err)
	}
	if _, err := reader.LoadIdempotency(ctx, "lost-key"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("idempotency key of the lost append: %v, want ErrNotFound", err)
	}

	// The same store carries on, with the next position right after the
	// last committed one.
	res, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: 1, Events: storetest.Events(2), IdempotencyKey: "lost-key"})
	if err != nil {
		t.Fatalf("append after the lost connection: %v", err)
	}
	if res.FirstPosition != 2 || res.LastVersion != 3 {
		t.Fatalf("append after the lost connection = %+v; want positions from 2, version 3", res)
	}
	recs, err := storetest.Collect(reader.ReadAll(ctx, 0))
	if err != nil || len(recs) != 3 {
		t.Fatalf("ReadAll = %d records, %v; want 3", len(recs), err)
	}
}
