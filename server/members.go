package server

import (
	"context"
	"sync"

	"github.com/parley-im/parley/server/store"
)

// memberCache keeps the member devices of recently used groups, so a send
// does not read the member list from the store before pushing. Entries are
// dropped when this server changes a group's membership (commit, revoke,
// account deletion). A generation counter keeps a read that raced with an
// invalidation from caching a stale list.
//
// With several server nodes sharing a store, another node's membership
// change is not seen here until the entry is evicted; pushes may then miss
// a new member (it still catches up with Fetch) or reach a removed device's
// open connection until it reconnects. A multi-node bus must carry
// invalidations.
type memberCache struct {
	store store.DeliveryService
	max   int

	mu     sync.Mutex
	gen    uint64
	groups map[store.GroupID][]store.DeviceRef
}

func newMemberCache(st store.DeliveryService, max int) *memberCache {
	return &memberCache{store: st, max: max, groups: make(map[store.GroupID][]store.DeviceRef)}
}

// get returns the group's member devices. The slice must not be modified.
func (c *memberCache) get(ctx context.Context, g store.GroupID) ([]store.DeviceRef, error) {
	c.mu.Lock()
	refs, ok := c.groups[g]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return refs, nil
	}
	members, err := c.store.Members(ctx, g)
	if err != nil {
		return nil, err
	}
	refs = make([]store.DeviceRef, len(members))
	for i, m := range members {
		refs[i] = m.Device
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.groups) >= c.max {
			for k := range c.groups { // evict one arbitrary entry
				delete(c.groups, k)
				break
			}
		}
		c.groups[g] = refs
	}
	c.mu.Unlock()
	return refs, nil
}

func (c *memberCache) invalidate(g store.GroupID) {
	c.mu.Lock()
	c.gen++
	delete(c.groups, g)
	c.mu.Unlock()
}

func (c *memberCache) invalidateAll() {
	c.mu.Lock()
	c.gen++
	clear(c.groups)
	c.mu.Unlock()
}
