// Package bus carries server-pushed frames to the connections of devices,
// wherever those connections live.
//
// [Bus] is the interface the server uses; [InProcess] implements it for a
// single server process. A NATS implementation (one subject per device)
// fits the same interface because messages are opaque, already-encoded
// bytes: Publish never blocks on a receiver, and a receiver's handler must
// not block either.
package bus

import (
	"context"
	"errors"
	"sync"

	"github.com/parley-im/parley/server/store"
)

// ErrClosed is returned by a closed bus.
var ErrClosed = errors.New("bus: closed")

// Message is what travels on the bus to one device's connections.
type Message struct {
	// Frame is one encoded wire.Frame (without a length prefix), shared by
	// every receiver: handlers must not modify it.
	Frame []byte
	// Disconnect asks every connection of the device to close (the device
	// was revoked or its account deleted).
	Disconnect bool
}

// Handler receives messages for one device. It is called from the
// publisher's goroutine and must not block.
type Handler func(Message)

// Bus routes messages to devices.
type Bus interface {
	// Subscribe registers h for dev until the returned cancel is called.
	Subscribe(dev store.DeviceRef, h Handler) (cancel func(), err error)
	// Publish sends m to every subscriber of each device in to. Devices
	// with no subscriber are skipped (they catch up from the store).
	// Publish does not keep m.Frame after it returns (handlers copy what
	// they queue), so the caller may reuse it.
	Publish(ctx context.Context, to []store.DeviceRef, m Message) error
	// Invalidate tells every process on the bus, this one included, that
	// the member lists of groups changed, so cached copies must be
	// dropped; nil groups means every group. Like Publish it does not wait
	// for the receivers.
	Invalidate(ctx context.Context, groups []store.GroupID) error
	// OnInvalidate registers h to receive every Invalidate (from any
	// process) until the returned cancel is called. h gets nil when every
	// group is affected, or when the bus may have missed invalidations
	// (for example after reconnecting). It must not block.
	OnInvalidate(h InvalidateHandler) (cancel func(), err error)
	// Close stops the bus; later calls return ErrClosed.
	Close() error
}

// InvalidateHandler receives the groups whose member lists changed (nil:
// all groups).
type InvalidateHandler func(groups []store.GroupID)

// InProcess is a Bus within one process. The zero value is not usable;
// call NewInProcess.
type InProcess struct {
	mu     sync.RWMutex
	subs   map[store.DeviceRef]map[*subscription]struct{}
	inval  map[*InvalidateHandler]struct{}
	closed bool
}

type subscription struct{ h Handler }

// NewInProcess returns an empty in-process bus.
func NewInProcess() *InProcess {
	return &InProcess{
		subs:  make(map[store.DeviceRef]map[*subscription]struct{}),
		inval: make(map[*InvalidateHandler]struct{}),
	}
}

// Subscribe implements Bus.
func (b *InProcess) Subscribe(dev store.DeviceRef, h Handler) (func(), error) {
	s := &subscription{h: h}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	set := b.subs[dev]
	if set == nil {
		set = make(map[*subscription]struct{}, 1)
		b.subs[dev] = set
	}
	set[s] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if set := b.subs[dev]; set != nil {
				delete(set, s)
				if len(set) == 0 {
					delete(b.subs, dev)
				}
			}
		})
	}, nil
}

// Publish implements Bus. Handlers run under a read lock, so they must not
// call Subscribe or cancel.
func (b *InProcess) Publish(_ context.Context, to []store.DeviceRef, m Message) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for _, dev := range to {
		for s := range b.subs[dev] {
			s.h(m)
		}
	}
	return nil
}

// Invalidate implements Bus: the handlers run before it returns.
func (b *InProcess) Invalidate(_ context.Context, groups []store.GroupID) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for h := range b.inval {
		(*h)(groups)
	}
	return nil
}

// OnInvalidate implements Bus.
func (b *InProcess) OnInvalidate(h InvalidateHandler) (func(), error) {
	p := &h
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.inval[p] = struct{}{}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.inval, p)
	}, nil
}

// Subscribers returns the number of devices with at least one subscriber.
func (b *InProcess) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Close implements Bus.
func (b *InProcess) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.subs = make(map[store.DeviceRef]map[*subscription]struct{})
	clear(b.inval)
	return nil
}
