package ratelimit

import (
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestKeyedLimits(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	k := New[string](Limits{Rate: 1, Burst: 2}, 10, c.now)
	for i := 0; i < 2; i++ {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, retry := k.Allow("a")
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("third: ok=%v retry=%v", ok, retry)
	}
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal("other key limited")
	}
	c.t = c.t.Add(time.Second)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("not refilled")
	}
}

func TestKeyedBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	k := New[int](Limits{Rate: 1, Burst: 1}, 3, c.now)
	for i := 0; i < 100; i++ {
		k.Allow(i)
	}
	if k.Len() > 3 {
		t.Fatalf("holds %d keys", k.Len())
	}
	// Keys over the bound share the overflow limiter: it is now empty.
	if ok, _ := k.Allow(1000); ok {
		t.Fatal("overflow limiter not shared")
	}
	c.t = c.t.Add(2 * time.Second)
	if ok, _ := k.Allow(2000); !ok {
		t.Fatal("idle keys not evicted")
	}
}

func TestDisabled(t *testing.T) {
	k := New[int](Limits{}, 1, time.Now)
	for i := 0; i < 1000; i++ {
		if ok, _ := k.Allow(i); !ok {
			t.Fatal("disabled limiter refused")
		}
	}
}

func TestEvictionScansAreRationed(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	k := New[int](Limits{Rate: 1, Burst: 10}, 100, c.now)
	for i := 0; i < 100; i++ {
		k.Allow(i)
	}
	// A flood of new keys while every held key is busy: one scan, then the
	// next is put off until a key could have refilled (10 s).
	for i := 100; i < 10000; i++ {
		k.Allow(i)
	}
	if !k.nextEvict.Equal(c.t.Add(10 * time.Second)) {
		t.Fatalf("next eviction at %v", k.nextEvict)
	}
	c.t = c.t.Add(11 * time.Second)
	if ok, _ := k.Allow(20000); !ok {
		t.Fatal("idle keys not evicted after the refill period")
	}
	if k.Len() != 1 {
		t.Fatalf("holds %d keys after eviction", k.Len())
	}
}
