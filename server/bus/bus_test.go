package bus

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

func ref(b byte) store.DeviceRef {
	return store.DeviceRef{Account: "aaaa", Device: identity.DeviceID{b}}
}

func TestInProcessRoutes(t *testing.T) {
	b := NewInProcess()
	var mu sync.Mutex
	got := map[string]int{}
	sub := func(name string) Handler {
		return func(m Message) { mu.Lock(); got[name+string(m.Frame)]++; mu.Unlock() }
	}
	c1, _ := b.Subscribe(ref(1), sub("a"))
	_, _ = b.Subscribe(ref(1), sub("b"))
	_, _ = b.Subscribe(ref(2), sub("c"))
	if err := b.Publish(context.Background(), []store.DeviceRef{ref(1), ref(3)}, Message{Frame: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c1()
	c1() // idempotent
	_ = b.Publish(context.Background(), []store.DeviceRef{ref(1), ref(2)}, Message{Frame: []byte("y")})
	want := map[string]int{"ax": 1, "bx": 1, "by": 1, "cy": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if n := b.Subscribers(); n != 2 {
		t.Fatalf("subscribers %d", n)
	}
	_ = b.Close()
	if err := b.Publish(context.Background(), nil, Message{}); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ref(1), sub("a")); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestInProcessConcurrent(t *testing.T) {
	b := NewInProcess()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				cancel, _ := b.Subscribe(ref(byte(j%4)), func(Message) {})
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_ = b.Publish(context.Background(), []store.DeviceRef{ref(byte(j % 4))}, Message{})
			}
		}()
	}
	wg.Wait()
}

func TestInProcessInvalidate(t *testing.T) {
	b := NewInProcess()
	var got [][]store.GroupID
	cancel, err := b.OnInvalidate(func(gs []store.GroupID) { got = append(got, gs) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Invalidate(ctx, []store.GroupID{"g1", "g2"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Invalidate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = b.Invalidate(ctx, []store.GroupID{"g3"})
	if len(got) != 2 || len(got[0]) != 2 || got[0][1] != "g2" || got[1] != nil {
		t.Fatalf("handler got %q", got)
	}
	_ = b.Close()
	if err := b.Invalidate(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("invalidate after close: %v", err)
	}
}

func TestGroupsEncoding(t *testing.T) {
	for _, gs := range [][]store.GroupID{nil, {"a"}, {"group-1", store.GroupID(make([]byte, 255)), "x"}} {
		got, ok := decodeGroups(encodeGroups(gs))
		if !ok || len(got) != len(gs) || (gs == nil) != (got == nil) {
			t.Fatalf("%q: decoded %q, %v", gs, got, ok)
		}
		for i := range gs {
			if got[i] != gs[i] {
				t.Fatalf("%q: decoded %q", gs, got)
			}
		}
	}
	many := make([]store.GroupID, maxGroupsPerMessage+1)
	for i := range many {
		many[i] = "g"
	}
	if got, ok := decodeGroups(encodeGroups(many)); !ok || got != nil {
		t.Fatalf("an over-long list must become every group, got %d, %v", len(got), ok)
	}
	for _, bad := range [][]byte{{0}, {5, 'a'}, {0x80}} {
		if _, ok := decodeGroups(bad); ok {
			t.Fatalf("decoded %x", bad)
		}
	}
}

// FuzzDecodeGroups: invalidations arrive from the NATS server; no input
// panics, and whatever decodes encodes back to the same bytes.
func FuzzDecodeGroups(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeGroups([]store.GroupID{"g1", "group-two"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		gs, ok := decodeGroups(b)
		if !ok || gs == nil {
			return
		}
		if again := encodeGroups(gs); string(again) != string(b) {
			t.Fatalf("%x decoded to %q, which encodes to %x", b, gs, again)
		}
	})
}
