package blob

import (
	"context"
	"sync"
)

// keyedLocks serialises operations per blob id. Entries live only while
// someone holds or waits for them, so the map is bounded by the number of
// requests in flight.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[ID]*keyedLock
}

type keyedLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

// lock waits for id's lock or for ctx to end.
func (k *keyedLocks) lock(ctx context.Context, id ID) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[ID]*keyedLock{}
	}
	l := k.locks[id]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.locks[id] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, id)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
