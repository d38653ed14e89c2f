package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histPrecision is the number of significant bits a histogram keeps: values
// are bucketed with a relative error below 2^-(histPrecision-1), about 1.6%.
const histPrecision = 7

// histBuckets covers every uint64 value: 2^P exact buckets, then 2^(P-1)
// buckets per further power of two.
const histBuckets = 1<<histPrecision + (64-histPrecision)<<(histPrecision-1)

// Histogram records durations in log-linear buckets, so its memory is fixed
// (about 30 KiB) however many samples it takes. Record is safe for
// concurrent use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

func bucketOf(v uint64) int {
	if v < 1<<histPrecision {
		return int(v)
	}
	shift := bits.Len64(v) - histPrecision
	return 1<<histPrecision + (shift-1)<<(histPrecision-1) + int(v>>shift) - 1<<(histPrecision-1)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 1<<histPrecision {
		return uint64(i), uint64(i)
	}
	j := i - 1<<histPrecision
	shift := j>>(histPrecision-1) + 1
	m := uint64(j&(1<<(histPrecision-1)-1)) + 1<<(histPrecision-1)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one sample; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest sample.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the average sample, or 0 without samples.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value below which the fraction q of the samples
// lie (the middle of that sample's bucket, never above the maximum), or 0
// without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			return time.Duration(min(lo+(hi-lo)/2, h.max.Load()))
		}
	}
	return h.Max()
}

// summary returns h in milliseconds, or nil if it is empty.
func (h *Histogram) summary() *Latency {
	if h.Count() == 0 {
		return nil
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return &Latency{
		Samples: h.Count(),
		P50:     ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)),
		Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}
