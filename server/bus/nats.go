package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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
//
// Membership invalidations travel on one subject, "<prefix>.members", to
// which every process subscribes with its own handler goroutine, apart from
// the device traffic so a burst of pushes cannot crowd them out. When NATS
// may have lost some (after a reconnect, or when that subscription was a
// slow consumer) the handlers are told to drop everything.
type NATS struct {
	nc     *nats.Conn
	prefix string
	local  *InProcess
	ch     chan *nats.Msg
	inval  *nats.Subscription

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
	b := &NATS{
		prefix: o.Prefix, local: NewInProcess(),
		ch: make(chan *nats.Msg, o.Buffer), subs: make(map[store.DeviceRef]*natsSub),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// Invalidations published while this process was cut off are lost;
	// so may be those NATS dropped for a slow subscriber.
	lost := func() { _ = b.local.Invalidate(context.Background(), nil) }
	nc, err := nats.Connect(url, nats.Name(o.Name), nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) { lost() }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil && sub == b.invalSub() && errors.Is(err, nats.ErrSlowConsumer) {
				lost()
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to NATS: %w", err)
	}
	b.nc = nc
	inval, err := nc.Subscribe(b.membersSubject(), func(m *nats.Msg) {
		groups, ok := decodeGroups(m.Data)
		if !ok {
			groups = nil // undecodable: drop everything rather than nothing
		}
		_ = b.local.Invalidate(context.Background(), groups)
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("failed to subscribe to membership changes on NATS: %w", err)
	}
	b.mu.Lock()
	b.inval = inval
	b.mu.Unlock()
	go b.dispatch()
	return b, nil
}

func (b *NATS) invalSub() *nats.Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inval
}

func (b *NATS) membersSubject() string { return b.prefix + ".members" }

// maxGroupsPerMessage bounds one invalidation message; longer lists are
// sent as "every group".
const maxGroupsPerMessage = 1024

// encodeGroups encodes an invalidation: each group id prefixed by its
// length as a uvarint; an empty message means every group.
func encodeGroups(groups []store.GroupID) []byte {
	if len(groups) > maxGroupsPerMessage {
		return nil
	}
	var out []byte
	for _, g := range groups {
		out = binary.AppendUvarint(out, uint64(len(g)))
		out = append(out, g...)
	}
	return out
}

// decodeGroups reverses encodeGroups: nil, true for every group; false
// for bytes encodeGroups cannot have written.
func decodeGroups(b []byte) ([]store.GroupID, bool) {
	if len(b) == 0 {
		return nil, true
	}
	var groups []store.GroupID
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		// Only the shortest (canonical) length encoding is accepted.
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n == 0 || n > uint64(len(b)-k) || len(groups) == maxGroupsPerMessage {
			return nil, false
		}
		groups = append(groups, store.GroupID(b[k:k+int(n)]))
		b = b[k+int(n):]
	}
	return groups, true
}

// invalidateFlush bounds Invalidate's wait for the NATS server.
const invalidateFlush = time.Second

// Invalidate implements Bus. It returns once the NATS server has the
// message (a round trip, so membership changes are not left in this
// client's write buffer while the change is answered), or after a second.
// The handlers of this process run when NATS echoes the message back, like
// those of every other process.
func (b *NATS) Invalidate(ctx context.Context, groups []store.GroupID) error {
	if groups != nil && len(groups) == 0 {
		return nil
	}
	err := b.nc.Publish(b.membersSubject(), encodeGroups(groups))
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, invalidateFlush)
		err = b.nc.FlushWithContext(fctx)
		cancel()
	}
	if err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrClosed
		}
		return fmt.Errorf("failed to publish a membership change on NATS: %w", err)
	}
	return nil
}

// OnInvalidate implements Bus.
func (b *NATS) OnInvalidate(h InvalidateHandler) (func(), error) {
	return b.local.OnInvalidate(h)
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
