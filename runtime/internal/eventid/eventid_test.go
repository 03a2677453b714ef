package eventid_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/cqrsgen/cqrsgen/runtime/internal/eventid"
)

// TestBlocks checks that blocks reserved concurrently, walked
// with Next, hold ids distinct from every other block's and increasing
// within the block.
func TestBlocks(t *testing.T) {
	const goroutines, blocks = 8, 500
	out := make([][][16]byte, goroutines)
	var wg sync.WaitGroup
	for g := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range blocks {
				n := 1 + b%7
				id := eventid.Block(n)
				for range n {
					out[g] = append(out[g], id)
					id = eventid.Next(id)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[[16]byte]bool{}
	for _, ids := range out {
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("id %x made twice", id)
			}
			seen[id] = true
			if i > 0 && bytes.Compare(id[:], ids[i-1][:]) <= 0 {
				t.Fatalf("id %x after %x in one goroutine: not increasing", id, ids[i-1])
			}
			if id[6]>>4 != 7 || id[8]>>6 != 2 {
				t.Fatalf("id %x: version or variant bits lost", id)
			}
		}
	}
}

func BenchmarkBlock100(b *testing.B) {
	for b.Loop() {
		id := eventid.Block(100)
		for range 100 {
			id = eventid.Next(id)
		}
	}
}
