package pebble

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestReadAllBatchesEndAtTheNextRecord checks that ReadAll, which decodes
// records in batches under one lock, still ends a read at the record after
// a Close or a cancellation that comes mid-batch, and that records a
// caller keeps stay intact while the next batches are decoded.
func TestReadAllBatchesEndAtTheNextRecord(t *testing.T) {
	const total = 100
	for _, stopAt := range []int{1, 5, 6, 11, 37} {
		for _, how := range []string{"close", "cancel"} {
			t.Run(fmt.Sprintf("%s after %d", how, stopAt), func(t *testing.T) {
				s := openT(t, t.TempDir())
				defer s.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st := runtime.StreamID{Type: "T", ID: "x"}
				evs := make([]runtime.EventData, total)
				for i := range evs {
					evs[i] = ev(fmt.Sprint(i))
				}
				if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.NoStream, Events: evs}); err != nil {
					t.Fatal(err)
				}
				var kept []runtime.Record
				var last error
				for rec, err := range s.ReadAll(ctx, 0) {
					if err != nil {
						last = err
						break
					}
					kept = append(kept, rec)
					if len(kept) == stopAt {
						if how == "close" {
							if err := s.Close(); err != nil {
								t.Fatal(err)
							}
						} else {
							cancel()
						}
					}
				}
				want := runtime.ErrClosed
				if how == "cancel" {
					want = context.Canceled
				}
				if len(kept) != stopAt || !errors.Is(last, want) {
					t.Fatalf("read %d records then %v, want %d then %v", len(kept), last, stopAt, want)
				}
				for i, rec := range kept {
					if rec.Position != uint64(i+1) || rec.Version != uint64(i+1) || string(rec.Data) != fmt.Sprint(i) || rec.Metadata["k"] != fmt.Sprint(i) || rec.Name != "E" || rec.Stream != st {
						t.Fatalf("record %d = %+v", i, rec)
					}
				}
			})
		}
	}
}
