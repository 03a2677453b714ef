package pebble

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestPurgeAndReuseInOneGroup applies, as one writer group, a purge of an
// expired key and appends that record it again, in both orders: the key
// is stored once, live, and the counters agree with what is stored.
func TestPurgeAndReuseInOneGroup(t *testing.T) {
	for _, purgeFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "PurgeThenAppend", false: "AppendThenPurge"}[purgeFirst], func(t *testing.T) {
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			s := openT(t, t.TempDir(), WithIdempotencyTTL(time.Hour), WithClock(func() time.Time { return now }))
			defer s.Close()
			ctx := context.Background()
			st := runtime.StreamID{Type: "T", ID: "a"}
			req := runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: []runtime.EventData{{Name: "E", Data: []byte("x")}}, IdempotencyKey: "k"}
			if _, err := s.Append(ctx, req); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Hour)

			var n uint64
			purge := &op{kind: opFunc, ctx: ctx, fn: purgeKeys([]string{"k"}, &n), done: make(chan struct{}, 1)}
			appends := []*op{getAppendOp(ctx, req, s.opts.now), getAppendOp(ctx, req, s.opts.now)}
			ops := append([]*op{purge}, appends...)
			if !purgeFirst {
				ops = append(appends, purge)
			}
			s.wlock.Lock()
			p := s.w.group(ops)
			s.wlock.Unlock()
			if p == nil {
				t.Fatal("the group committed nothing")
			}
			s.settle(p)
			for _, o := range ops {
				<-o.done
			}
			if appends[0].err != nil {
				t.Fatalf("append with the expired key: %v", appends[0].err)
			}
			if !isDuplicate(appends[1].err) {
				t.Errorf("second append with the key in the same group: %v, want a duplicate", appends[1].err)
			}
			if want := map[bool]uint64{true: 1, false: 0}[purgeFirst]; n != want {
				t.Errorf("purged %d, want %d", n, want)
			}
			rec, err := s.LoadIdempotency(ctx, "k")
			if err != nil || rec.Version != 2 {
				t.Errorf("LoadIdempotency = %+v, %v; want the record of version 2", rec, err)
			}
			st2, err := s.Stats(ctx)
			if err != nil || st2.IdempotencyKeys != 1 {
				t.Errorf("Stats.IdempotencyKeys = %d, %v; want 1", st2.IdempotencyKeys, err)
			}
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range rep.Problems {
				t.Errorf("Verify: %s", pr)
			}
		})
	}
}

func isDuplicate(err error) bool {
	var de *runtime.DuplicateError
	return errors.As(err, &de)
}
