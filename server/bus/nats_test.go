package bus

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

func natsURL(t *testing.T) string {
	u := os.Getenv("PARLEY_TEST_NATS")
	if u == "" {
		t.Skip("PARLEY_TEST_NATS not set")
	}
	return u
}

type recorder struct {
	mu  sync.Mutex
	got []Message
	ch  chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 100)} }

func (r *recorder) handle(m Message) {
	r.mu.Lock()
	r.got = append(r.got, Message{Frame: append([]byte(nil), m.Frame...), Disconnect: m.Disconnect})
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.got...)
}

// TestNATSAcrossProcesses uses two buses, as two server processes would.
func TestNATSAcrossProcesses(t *testing.T) {
	url := natsURL(t)
	prefix := "parleytest" + identity.DeviceID{byte(time.Now().UnixNano())}.String()[:6]
	a, err := NewNATS(url, NATSOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewNATS(url, NATSOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	acct := identity.AccountID("abcdefghijklmnopqrstuvwxyz234567")
	dev1 := store.DeviceRef{Account: acct, Device: identity.DeviceID{1}}
	dev2 := store.DeviceRef{Account: acct, Device: identity.DeviceID{2}}

	r1, r1b, r2 := newRecorder(), newRecorder(), newRecorder()
	cancel1, err := a.Subscribe(dev1, r1.handle)
	if err != nil {
		t.Fatal(err)
	}
	cancel1b, _ := a.Subscribe(dev1, r1b.handle) // a second connection of dev1
	_, _ = a.Subscribe(dev2, r2.handle)
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	if err := b.Publish(ctx, []store.DeviceRef{dev1, dev2}, Message{Frame: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	r1.wait(t)
	r1b.wait(t)
	r2.wait(t)
	if got := r1.messages(); len(got) != 1 || string(got[0].Frame) != "hello" || got[0].Disconnect {
		t.Fatalf("dev1 got %v", got)
	}
	if err := b.Publish(ctx, []store.DeviceRef{dev2}, Message{Disconnect: true}); err != nil {
		t.Fatal(err)
	}
	r2.wait(t)
	if got := r2.messages(); len(got) != 2 || !got[1].Disconnect {
		t.Fatalf("dev2 got %v", got)
	}

	// After both connections of dev1 unsubscribe, it gets nothing; a later
	// message to dev2 from the same publisher arrives after it would have.
	cancel1()
	cancel1b()
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = b.Publish(ctx, []store.DeviceRef{dev1}, Message{Frame: []byte("late")})
	_ = b.Publish(ctx, []store.DeviceRef{dev2}, Message{Frame: []byte("marker")})
	r2.wait(t)
	if got := r1.messages(); len(got) != 1 {
		t.Fatalf("unsubscribed dev1 got %v", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscribe(dev1, r1.handle); err != ErrClosed {
		t.Fatalf("subscribe after close: %v", err)
	}
}

// TestNATSInvalidate: a membership change announced by one process reaches
// the handlers of every process, the announcing one included.
func TestNATSInvalidate(t *testing.T) {
	url := natsURL(t)
	prefix := "parleytest" + identity.DeviceID{byte(time.Now().UnixNano()), 1}.String()[:8]
	buses := make([]*NATS, 2)
	got := make([]chan []store.GroupID, 2)
	for i := range buses {
		b, err := NewNATS(url, NATSOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		buses[i] = b
		ch := make(chan []store.GroupID, 10)
		got[i] = ch
		if _, err := b.OnInvalidate(func(gs []store.GroupID) { ch <- gs }); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	next := func(i int) []store.GroupID {
		t.Helper()
		select {
		case gs := <-got[i]:
			return gs
		case <-time.After(10 * time.Second):
			t.Fatalf("bus %d: no invalidation within 10s", i)
			return nil
		}
	}
	if err := buses[0].Invalidate(ctx, []store.GroupID{"g1", "g2"}); err != nil {
		t.Fatal(err)
	}
	for i := range buses {
		if gs := next(i); len(gs) != 2 || gs[0] != "g1" || gs[1] != "g2" {
			t.Fatalf("bus %d got %q", i, gs)
		}
	}
	if err := buses[1].Invalidate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for i := range buses {
		if gs := next(i); gs != nil {
			t.Fatalf("bus %d got %q, want every group (nil)", i, gs)
		}
	}
	// Empty list: nothing to announce.
	if err := buses[0].Invalidate(ctx, []store.GroupID{}); err != nil {
		t.Fatal(err)
	}
	select {
	case gs := <-got[1]:
		t.Fatalf("an empty list was announced as %q", gs)
	case <-time.After(100 * time.Millisecond):
	}
}
