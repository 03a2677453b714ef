package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsTileTheRange(t *testing.T) {
	_, prevHi := bucketRange(0)
	if lo, _ := bucketRange(0); lo != 0 {
		t.Fatalf("bucket 0 starts at %d, want 0", lo)
	}
	for i := 1; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*subCount && float64(hi-lo+1) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d,%d] is wider than 1/%d of its values", i, lo, hi, subCount)
		}
		prevHi = hi
	}
	if prevHi != math.MaxInt64 {
		t.Fatalf("last bucket ends at %d, want MaxInt64", prevHi)
	}
}

// oracle returns the value of rank ceil(q*n) in sorted.
func oracle(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestQuantilesAgainstSortedOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		n    int
		gen  func() int64
	}{
		{"small-exact", 10_000, func() int64 { return r.Int64N(200) }},
		{"uniform-us", 100_000, func() int64 { return 1_000 + r.Int64N(1_000_000) }},
		{"lognormal-latency", 200_000, func() int64 { return int64(math.Exp(10 + 2*r.NormFloat64())) }},
		{"heavy-tail", 50_000, func() int64 {
			if r.IntN(1000) == 0 {
				return 1e9 + r.Int64N(1e12)
			}
			return 20_000 + r.Int64N(5_000)
		}},
		{"huge", 20_000, func() int64 { return r.Int64N(math.MaxInt64) }},
		{"single", 1, func() int64 { return 123_456_789 }},
		{"constant", 1_000, func() int64 { return 777_777 }},
	}
	qs := []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]int64, c.n)
			for i := range vals {
				vals[i] = c.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(c.n) {
				t.Fatalf("Count = %d, want %d", h.Count(), c.n)
			}
			if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Fatalf("Min/Max = %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			for _, q := range qs {
				want := oracle(vals, q)
				got := h.Quantile(q)
				if diff := math.Abs(float64(got - want)); diff > RelativeError*float64(want) {
					t.Errorf("Quantile(%v) = %d, exact %d: relative error %.5f > %.5f", q, got, want, diff/float64(want), RelativeError)
				}
			}
		})
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 50_000 {
		v := int64(math.Exp(8 + 3*r.NormFloat64()))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	if *a != *all {
		t.Fatalf("merged histogram differs: %+v vs %+v", a.Summary(), all.Summary())
	}
}

func TestEmptyAndNegative(t *testing.T) {
	h := NewHistogram()
	if h.Summary() != nil || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 {
		t.Fatalf("empty histogram: summary %+v, p50 %d, max %d", h.Summary(), h.Quantile(0.5), h.Max())
	}
	h.Record(-5)
	if got := h.Summary(); got == nil || got.Count != 1 || got.P50 != 0 || got.Max != 0 {
		t.Fatalf("after Record(-5): %+v, want one value of 0", got)
	}
}
