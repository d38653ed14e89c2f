package server

import (
	"context"
	"sync"
	"time"

	"github.com/parley-im/parley/server/store"
)

// memberCache keeps the member devices of recently used groups, so a send
// does not read the member list from the store before pushing. Entries are
// dropped when a group's membership changes (commit, revoke, account
// deletion, group creation): at once on this server, and on every other
// server process through the bus (bus.Bus.Invalidate), which tells every
// process's cache, this one's included. A generation counter keeps a read
// that raced with an invalidation from caching a stale list.
//
// With several server processes, between a membership change being
// durable on one and the bus delivering the invalidation to another
// (normally well under a millisecond on one network), the other may still
// push to a removed device's open connection (it cannot decrypt the new
// epoch's messages, but it learns that traffic happened) or miss a new
// member (it catches up with Fetch after its Welcome's wake). If the bus
// loses invalidations (a NATS reconnect), every entry is dropped; as a last
// resort entries expire after ttl (Config.MemberCacheTTL, 2 s by default
// when the bus is not in-process).
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

// invalidateGroups is the bus's InvalidateHandler: nil drops every entry.
func (c *memberCache) invalidateGroups(groups []store.GroupID) {
	if groups == nil {
		c.invalidateAll()
		return
	}
	c.mu.Lock()
	c.gen++
	for _, g := range groups {
		delete(c.groups, g)
	}
	c.mu.Unlock()
}

// membershipChanged drops the cached member lists of groups (nil: all) in
// this process at once and in every other one through the bus. It is
// called after the change is durable and before anything is pushed about
// it.
func (s *Server) membershipChanged(ctx context.Context, groups []store.GroupID) {
	s.members.invalidateGroups(groups)
	if err := s.cfg.Bus.Invalidate(ctx, groups); err != nil {
		s.log.Warn("failed to announce a membership change on the bus; other server processes rely on the member cache TTL", "err", err)
	}
}
