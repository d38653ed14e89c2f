package server

import (
	"context"
	"sync"
	"time"

	"github.com/parley-im/parley/server/store"
)

// memberCache keeps the member devices of recently used groups, so a send
// does not read the member list from the store before pushing. Entries are
// dropped when this server changes a group's membership (commit, revoke,
// account deletion). A generation counter keeps a read that raced with an
// invalidation from caching a stale list.
//
// With several server processes sharing a store, another process's
// membership change is not seen here until the entry is older than ttl
// (Config.MemberCacheTTL, 2 s by default when the bus is not in-process):
// until then pushes may miss a new member (it still catches up with Fetch
// after its Welcome's wake) or reach a removed device's open connection
// (it cannot decrypt the new epoch's messages).
type memberCache struct {
	store store.DeliveryService
	max   int
	ttl   time.Duration // 0: entries live until invalidated or evicted
	now   func() time.Time

	mu     sync.Mutex
	gen    uint64
	groups map[store.GroupID]memberEntry
}

type memberEntry struct {
	refs []store.DeviceRef
	at   time.Time
}

func newMemberCache(st store.DeliveryService, max int, ttl time.Duration, now func() time.Time) *memberCache {
	return &memberCache{store: st, max: max, ttl: ttl, now: now, groups: make(map[store.GroupID]memberEntry)}
}

// get returns the group's member devices. The slice must not be modified.
func (c *memberCache) get(ctx context.Context, g store.GroupID) ([]store.DeviceRef, error) {
	c.mu.Lock()
	e, ok := c.groups[g]
	gen := c.gen
	c.mu.Unlock()
	if ok && (c.ttl == 0 || c.now().Sub(e.at) < c.ttl) {
		return e.refs, nil
	}
	members, err := c.store.Members(ctx, g)
	if err != nil {
		return nil, err
	}
	refs := make([]store.DeviceRef, len(members))
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
		c.groups[g] = memberEntry{refs: refs, at: c.now()}
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
