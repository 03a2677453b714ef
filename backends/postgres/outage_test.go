package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/backends/postgres/pgtest"
	"github.com/cqrsgen/cqrsgen/backends/storetest"
	"github.com/cqrsgen/cqrsgen/runtime"
	"github.com/cqrsgen/cqrsgen/runtime/projection"
)

// TestServerRestartUnderLoad crashes a server of its own (immediate
// shutdown, so the restart runs crash recovery) while a writer appends, a
// projection group and a Subscribe follow the log, and keeps it down for
// 2 s. The projection must report that it waits for the store, and once
// the server is back everything must resume by itself: the subscriber sees
// every position once and in order, the projection reaches the head, and
// every acknowledged append is in the log.
func TestServerRestartUnderLoad(t *testing.T) {
	pgtest.Require(t)
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, srv.DSN(), WithPollInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The writer: one event per append, retried on error.
	var (
		ackMu    sync.Mutex
		acked    []uint64
		failures atomic.Int64
		errSeen  = map[string]bool{}
	)
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			select {
			case <-stopWriting:
				return
			default:
			}
			res, err := s.Append(ctx, runtime.AppendRequest{Stream: runtime.StreamID{Type: "T", ID: "w"},
				Expected: runtime.AnyVersion, Events: storetest.Events(1)})
			if err != nil {
				failures.Add(1)
				ackMu.Lock()
				if !errors.Is(err, runtime.ErrUnavailable) {
					errSeen[err.Error()] = true
				}
				ackMu.Unlock()
				time.Sleep(20 * time.Millisecond)
				continue
			}
			ackMu.Lock()
			acked = append(acked, res.LastPosition)
			ackMu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()

	// The projection and the subscriber.
	var projMu sync.Mutex
	projSeen := map[uint64]bool{}
	group := projection.NewGroup(s, projection.LeaseTTL(time.Second))
	if err := group.Add(projection.Projection{Name: "seen", Handle: func(ctx context.Context, rec runtime.Record) error {
		projMu.Lock()
		projSeen[rec.Position] = true
		projMu.Unlock()
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	groupDone := make(chan error, 1)
	go func() { groupDone <- group.Run(ctx) }()
	var subLast atomic.Uint64
	subErr := make(chan error, 1)
	go func() {
		for rec, err := range runtime.Subscribe(ctx, s, 0) {
			if err != nil {
				subErr <- err
				return
			}
			if want := subLast.Load() + 1; rec.Position != want {
				subErr <- errors.New("subscriber skipped or repeated a position")
				return
			}
			subLast.Store(rec.Position)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	srv.Crash()
	crashed := time.Now()
	waiting := false
	for time.Since(crashed) < 2*time.Second {
		st, _ := group.Status(ctx, "seen")
		if st.State == projection.Waiting && errors.Is(st.LastError, runtime.ErrUnavailable) {
			if !waiting {
				t.Logf("status while the server is down: %v: %v", st.State, st.LastError)
			}
			waiting = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	time.Sleep(500 * time.Millisecond)
	close(stopWriting)
	<-writerDone
	if !waiting {
		t.Error("the projection never reported that it waits for the store")
	}

	head, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head after the restart: %v", err)
	}
	for {
		st, err := group.Status(ctx, "seen")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == projection.Failed {
			t.Fatalf("projection failed: %v", st.LastError)
		}
		if st.Position >= head && subLast.Load() >= head {
			if st.State != projection.Running || st.LastError != nil {
				t.Fatalf("projection caught up but is %v (%v)", st.State, st.LastError)
			}
			break
		}
		select {
		case err := <-subErr:
			t.Fatalf("subscription ended: %v", err)
		case err := <-groupDone:
			t.Fatalf("group ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(back) > time.Minute {
			t.Fatalf("not caught up a minute after the restart: projection %+v, subscriber at %d, head %d", st, subLast.Load(), head)
		}
	}
	t.Logf("caught up with head %d %v after the restart; %d appends acknowledged, %d failed during the outage",
		head, time.Since(back).Round(time.Millisecond), len(acked), failures.Load())
	for e := range errSeen {
		t.Errorf("append failed with an error not marked unavailable: %s", e)
	}
	projMu.Lock()
	for p := uint64(1); p <= head; p++ {
		if !projSeen[p] {
			t.Errorf("projection never saw position %d", p)
		}
	}
	projMu.Unlock()
	inLog := map[uint64]bool{}
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		inLog[rec.Position] = true
	}
	for _, p := range acked {
		if !inLog[p] {
			t.Errorf("acknowledged position %d is not in the log", p)
		}
	}
	cancel()
	if err := <-groupDone; err != nil {
		t.Fatalf("group: %v", err)
	}
}
