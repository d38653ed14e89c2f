// Package ratelimit keeps one token-bucket limiter (golang.org/x/time/rate)
// per key — a device or a network address — with a bounded number of keys.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits is a rate and a burst. A zero Rate disables limiting.
type Limits struct {
	Rate  rate.Limit // events per second
	Burst int
}

// Keyed holds a limiter per key. When MaxKeys keys are held, keys idle for
// longer than it takes their bucket to refill are evicted; if none is idle
// the new key shares an overflow limiter, so memory stays bounded under a
// flood of new keys.
type Keyed[K comparable] struct {
	limits  Limits
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	entries   map[K]*entry
	overflow  *rate.Limiter
	nextEvict time.Time // no eviction scan before this time
}

type entry struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns a keyed limiter holding at most maxKeys keys.
func New[K comparable](l Limits, maxKeys int, now func() time.Time) *Keyed[K] {
	if maxKeys <= 0 {
		maxKeys = 1
	}
	return &Keyed[K]{
		limits:   l,
		maxKeys:  maxKeys,
		now:      now,
		entries:  make(map[K]*entry),
		overflow: rate.NewLimiter(l.Rate, l.Burst),
	}
}

// Allow takes one token for key. When it returns false, retry tells how
// long until a token is available.
func (k *Keyed[K]) Allow(key K) (ok bool, retry time.Duration) {
	if k.limits.Rate == 0 {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entries[key]
	var lim *rate.Limiter
	if e != nil {
		e.last = now
		lim = e.lim
	} else {
		if len(k.entries) >= k.maxKeys && !now.Before(k.nextEvict) {
			k.evict(now)
		}
		if len(k.entries) < k.maxKeys {
			lim = rate.NewLimiter(k.limits.Rate, k.limits.Burst)
			k.entries[key] = &entry{lim: lim, last: now}
		} else {
			lim = k.overflow
		}
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops keys whose buckets have refilled (idle long enough that a
// fresh limiter would behave the same). A scan costs the map size, so after
// one the next waits until the oldest remaining entry could have refilled:
// a flood of new keys costs at most one scan per refill period.
func (k *Keyed[K]) evict(now time.Time) {
	full := time.Duration(float64(k.limits.Burst) / float64(k.limits.Rate) * float64(time.Second))
	oldest := now
	for key, e := range k.entries {
		if now.Sub(e.last) >= full {
			delete(k.entries, key)
		} else if e.last.Before(oldest) {
			oldest = e.last
		}
	}
	k.nextEvict = oldest.Add(full)
}

// Len returns the number of keys held.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}
