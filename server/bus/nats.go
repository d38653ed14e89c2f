package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

// NATS is a Bus across server processes over a NATS server: each device
// has a subject, "<prefix>.dev.<account id>.<device id>", to which every
// process that holds a connection of the device subscribes (once per
// device, however many connections). Publishing sends one NATS message per
// device; NATS routes it to the processes that subscribed.
//
// All subscriptions of a process share one channel drained by one
// goroutine, which hands messages to the local connections through an
// InProcess bus; there is no goroutine per subscription. When that channel
// is full NATS drops messages for this process (a slow consumer): pushes
// are best effort, and everything pushed is durable in the store, where
// devices catch up with Fetch.
type NATS struct {
	nc     *nats.Conn
	prefix string
	local  *InProcess
	ch     chan *nats.Msg

	mu     sync.Mutex
	subs   map[store.DeviceRef]*natsSub
	closed bool
	stop   chan struct{} // ends the dispatcher (b.ch is never closed: NATS may still write to it)
	done   chan struct{}
}

type natsSub struct {
	sub  *nats.Subscription
	refs int
}

// NATSOptions configure a NATS bus.
type NATSOptions struct {
	// Prefix starts every subject (default "parley"); servers sharing a
	// NATS server but not a store use different prefixes.
	Prefix string
	// Buffer is the capacity of the shared receive channel (default 65536).
	Buffer int
	// Name is the NATS connection name shown by the NATS server.
	Name string
}

// message encoding on NATS: one flag byte, then the frame.
const (
	natsFrame      = 0
	natsDisconnect = 1
)

// NewNATS connects to the NATS server at url.
func NewNATS(url string, o NATSOptions) (*NATS, error) {
	if o.Prefix == "" {
		o.Prefix = "parley"
	}
	if o.Buffer <= 0 {
		o.Buffer = 65536
	}
	if o.Name == "" {
		o.Name = "parley-server"
	}
	nc, err := nats.Connect(url, nats.Name(o.Name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to NATS: %w", err)
	}
	b := &NATS{
		nc: nc, prefix: o.Prefix, local: NewInProcess(),
		ch: make(chan *nats.Msg, o.Buffer), subs: make(map[store.DeviceRef]*natsSub),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.dispatch()
	return b, nil
}

func (b *NATS) subject(dev store.DeviceRef) string {
	return b.prefix + ".dev." + string(dev.Account) + "." + dev.Device.String()
}

// parseSubject reverses subject.
func (b *NATS) parseSubject(s string) (store.DeviceRef, bool) {
	rest, ok := strings.CutPrefix(s, b.prefix+".dev.")
	if !ok {
		return store.DeviceRef{}, false
	}
	acct, dev, ok := strings.Cut(rest, ".")
	if !ok {
		return store.DeviceRef{}, false
	}
	a, err := identity.ParseAccountID(acct)
	if err != nil {
		return store.DeviceRef{}, false
	}
	d, err := identity.ParseDeviceID(dev)
	if err != nil {
		return store.DeviceRef{}, false
	}
	return store.DeviceRef{Account: a, Device: d}, true
}

func (b *NATS) dispatch() {
	defer close(b.done)
	for {
		var m *nats.Msg
		select {
		case m = <-b.ch:
		case <-b.stop:
			return
		}
		dev, ok := b.parseSubject(m.Subject)
		if !ok || len(m.Data) == 0 {
			continue
		}
		msg := Message{Frame: m.Data[1:], Disconnect: m.Data[0] == natsDisconnect}
		_ = b.local.Publish(context.Background(), []store.DeviceRef{dev}, msg)
	}
}

// Subscribe implements Bus. When it returns, the NATS server knows the
// subscription, so a message published afterwards from any process
// reaches h.
func (b *NATS) Subscribe(dev store.DeviceRef, h Handler) (func(), error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	cancelLocal, err := b.local.Subscribe(dev, h)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	s := b.subs[dev]
	created := false
	if s == nil {
		sub, err := b.nc.ChanSubscribe(b.subject(dev), b.ch)
		if err != nil {
			b.mu.Unlock()
			cancelLocal()
			return nil, fmt.Errorf("failed to subscribe on NATS: %w", err)
		}
		s = &natsSub{sub: sub}
		b.subs[dev] = s
		created = true
	}
	s.refs++
	b.mu.Unlock()
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			cancelLocal()
			b.mu.Lock()
			defer b.mu.Unlock()
			if s.refs--; s.refs == 0 && b.subs[dev] == s {
				delete(b.subs, dev)
				_ = s.sub.Unsubscribe()
			}
		})
	}
	if created {
		if err := b.nc.Flush(); err != nil {
			cancel()
			return nil, fmt.Errorf("failed to subscribe on NATS: %w", err)
		}
	}
	return cancel, nil
}

// Publish implements Bus. It returns once the messages are handed to the
// NATS client, not when they are delivered.
func (b *NATS) Publish(_ context.Context, to []store.DeviceRef, m Message) error {
	data := make([]byte, 1+len(m.Frame))
	if m.Disconnect {
		data[0] = natsDisconnect
	}
	copy(data[1:], m.Frame)
	var errs []error
	for _, dev := range to {
		if err := b.nc.Publish(b.subject(dev), data); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return ErrClosed
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("failed to publish on NATS: %w", errors.Join(errs...))
	}
	return nil
}

// Flush waits until the NATS server has processed everything published and
// every subscription change so far.
func (b *NATS) Flush() error { return b.nc.Flush() }

// Close implements Bus: it unsubscribes, closes the NATS connection and
// stops the dispatcher.
func (b *NATS) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.subs = nil
	b.mu.Unlock()
	b.nc.Close()
	close(b.stop)
	<-b.done
	return b.local.Close()
}
