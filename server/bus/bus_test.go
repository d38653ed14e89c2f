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
