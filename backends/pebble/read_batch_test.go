package pebble

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime"
)

// TestReadStreamBatchesEndAtTheNextRecord checks that ReadStream, which
// decodes records in batches under one lock, still ends a read at the
// record after a Close or a cancellation that comes mid-batch, that a
// break releases its iterators, and that records a caller keeps stay
// intact while the next batches are decoded.
func TestReadStreamBatchesEndAtTheNextRecord(t *testing.T) {
	const total = 100
	for _, stopAt := range []int{1, 3, 4, 5, 11, 37, 100} {
		for _, how := range []string{"close", "cancel", "break"} {
			t.Run(fmt.Sprintf("%s after %d", how, stopAt), func(t *testing.T) {
				s := openT(t, t.TempDir())
				defer s.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st := runtime.StreamID{Type: "T", ID: "x"}
				other := runtime.StreamID{Type: "T", ID: "y"}
				// Two appends of st with another stream's between, so the
				// read both moves to the next record and seeks to it.
				for i, n := range []int{total / 2, total - total/2} {
					evs := make([]runtime.EventData, n)
					for j := range evs {
						evs[j] = ev(fmt.Sprint(i*(total/2) + j))
					}
					if _, err := s.Append(ctx, runtime.AppendRequest{Stream: st, Expected: runtime.AnyVersion, Events: evs}); err != nil {
						t.Fatal(err)
					}
					if _, err := s.Append(ctx, runtime.AppendRequest{Stream: other, Expected: runtime.AnyVersion, Events: []runtime.EventData{ev("o")}}); err != nil {
						t.Fatal(err)
					}
				}
				var kept []runtime.Record
				var last error
				for rec, err := range s.ReadStream(ctx, st, 0) {
					if err != nil {
						last = err
						break
					}
					kept = append(kept, rec)
					if len(kept) == stopAt {
						if how == "break" {
							break
						}
						if how == "close" {
							if err := s.Close(); err != nil {
								t.Fatal(err)
							}
						} else {
							cancel()
						}
					}
				}
				var want error
				switch {
				case how == "close" && stopAt < total:
					want = runtime.ErrClosed
				case how == "cancel" && stopAt < total:
					want = context.Canceled
				}
				if len(kept) != stopAt || !errors.Is(last, want) || (want == nil && last != nil) {
					t.Fatalf("read %d records then %v, want %d then %v", len(kept), last, stopAt, want)
				}
				for i, rec := range kept {
					pos := uint64(i + 1)
					if i >= total/2 {
						pos++ // after the other stream's event
					}
					if rec.Position != pos || rec.Version != uint64(i+1) || string(rec.Data) != fmt.Sprint(i) || rec.Metadata["k"] != fmt.Sprint(i) || rec.Name != "E" || rec.Stream != st {
						t.Fatalf("record %d = %+v", i, rec)
					}
				}
				if how == "break" {
					stats, err := s.Stats(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if n := stats.Extra["open_iterators"]; n != 0 {
						t.Fatalf("%d iterators open after a break", n)
					}
				}
			})
		}
	}
}
