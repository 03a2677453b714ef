package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range of
// values is split into 2^subBits equal buckets, so a bucket is at most
// 1/2^subBits of the values it holds wide.
const subBits = 7

const (
	subCount = 1 << subBits
	// numBuckets covers every non-negative int64: values below 2*subCount
	// have a bucket each, then each further power of two adds subCount.
	numBuckets = (64 - subBits) * subCount
)

// RelativeError bounds how far a percentile reported by Histogram may be
// from the exact order statistic, relative to that statistic: a reported
// value v for a true value t satisfies |v-t| ≤ RelativeError·t.
const RelativeError = 1.0 / (2 * subCount)

// Histogram records non-negative int64 values (latencies in nanoseconds)
// in log-linear buckets, in the manner of HdrHistogram: exact below
// 2·2^subBits, and with a relative bucket width of at most 2^-subBits
// above. Recording is O(1) and allocation-free; percentiles are within
// RelativeError of the exact value; the minimum and maximum are exact.
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and Merge them.
type Histogram struct {
	counts   [numBuckets]uint64
	total    uint64
	min, max int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{min: math.MaxInt64}
}

// bucketOf returns the index of the bucket holding v (v ≥ 0).
func bucketOf(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - (subBits + 1)
	if shift <= 0 {
		return int(u)
	}
	return shift*subCount + int(u>>uint(shift))
}

// bucketRange returns the smallest and largest values of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	shift := i/subCount - 1
	mant := uint64(i - shift*subCount)
	l := mant << uint(shift)
	h := l + (uint64(1) << uint(shift)) - 1
	if h > math.MaxInt64 {
		h = math.MaxInt64
	}
	return int64(l), int64(h)
}

// Record adds one value; negative values are recorded as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// RecordDuration adds d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value, 0 when empty.
func (h *Histogram) Max() int64 {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Min returns the smallest recorded value, 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the value of rank
// ⌈q·n⌉ among the n recorded values in ascending order, to within
// RelativeError. It is 0 for an empty histogram. q ≤ 0 returns the
// minimum, q ≥ 1 the maximum.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// Percentiles is the summary of a histogram reported for a row.
type Percentiles struct {
	// Count is the number of recorded values.
	Count uint64 `json:"count"`
	// P50, P99, P999 and Max are nanoseconds.
	P50  int64 `json:"p50_ns"`
	P99  int64 `json:"p99_ns"`
	P999 int64 `json:"p999_ns"`
	Max  int64 `json:"max_ns"`
}

// Summary returns h's percentiles, nil when h is empty.
func (h *Histogram) Summary() *Percentiles {
	if h.total == 0 {
		return nil
	}
	return &Percentiles{Count: h.total, P50: h.Quantile(0.50), P99: h.Quantile(0.99), P999: h.Quantile(0.999), Max: h.Max()}
}
