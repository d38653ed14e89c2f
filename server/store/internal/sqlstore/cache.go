package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-im/parley/server/store"
)

// groupCache makes the hot append path of a single-writer backend (SQLite)
// cheaper: it remembers each recently used group's epoch and last seq and
// the members seen sending, and writes a group's new last seq once per
// transaction instead of once per message.
//
// It is safe only because exactly one goroutine writes: it is touched only
// by ops and by the writer's commit hooks, all on that goroutine, and every
// change to the groups table goes through the writer. Coherence rules:
//   - dirty last seqs are written before COMMIT (flush), and before a
//     commit reads the group's row from SQL (flushGroup); AckGroup reads
//     it without a flush, which only hides entries not yet committed;
//   - a rollback throws everything away (reset), since it may have undone
//     appends the cache counted;
//   - an accepted commit drops its group; a revocation or account deletion
//     forgets all cached members.
type groupCache struct {
	groups map[store.GroupID]*cachedGroup
	dirty  map[store.GroupID]*cachedGroup

	// pending holds the appends not yet written (pending.go); next and
	// args are scratch space for writing them.
	pending []pendingLog
	next    map[*cachedGroup]uint64
	args    []any
}

// cachedGroup is the cached state of one group.
type cachedGroup struct {
	epoch, lastSeq uint64
	// members holds devices known to be members; absence means "ask SQL".
	members map[store.DeviceRef]struct{}
}

// maxCachedGroups bounds the cache; when it is full, clean entries are
// dropped wholesale.
const maxCachedGroups = 1 << 16

const (
	qSelectGroupState = `SELECT epoch, last_seq FROM mls_groups WHERE group_id = ?`
	qSetLastSeq       = `UPDATE mls_groups SET last_seq = ? WHERE group_id = ?`
)

func newGroupCache() *groupCache {
	return &groupCache{groups: map[store.GroupID]*cachedGroup{}, dirty: map[store.GroupID]*cachedGroup{},
		next: map[*cachedGroup]uint64{}}
}

// group returns the cached state of a group, loading it if needed.
func (c *groupCache) group(ctx context.Context, tx Querier, id store.GroupID) (*cachedGroup, error) {
	if g, ok := c.groups[id]; ok {
		return g, nil
	}
	var epoch, last int64
	err := tx.QueryRow(ctx, qSelectGroupState, []byte(id)).Scan(&epoch, &last)
	if errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("%w: group", store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("read group", err)
	}
	if len(c.groups) >= maxCachedGroups {
		for k := range c.groups {
			if _, dirty := c.dirty[k]; !dirty {
				delete(c.groups, k)
			}
		}
	}
	g := &cachedGroup{epoch: uint64(epoch), lastSeq: uint64(last)}
	c.groups[id] = g
	return g, nil
}

// isMember reports whether dev is a member of the cached group g.
func (c *groupCache) isMember(ctx context.Context, tx Querier, id store.GroupID, g *cachedGroup, dev store.DeviceRef) (bool, error) {
	if _, ok := g.members[dev]; ok {
		return true, nil
	}
	ok, err := exists(ctx, tx, qMemberExists, []byte(id), string(dev.Account), dev.Device[:])
	if err != nil {
		return false, wrap("look up member", err)
	}
	if ok {
		if g.members == nil {
			g.members = map[store.DeviceRef]struct{}{}
		}
		g.members[dev] = struct{}{}
	}
	return ok, nil
}

// flushGroup writes the queued appends and one group's pending last seq.
// It uses the raw transaction: the writes belong to earlier, successful
// ops, not to the op that asks for the flush.
func (c *groupCache) flushGroup(ctx context.Context, tx WriteTx, id store.GroupID) error {
	if err := c.flushPending(ctx, tx); err != nil {
		return err
	}
	g, ok := c.dirty[id]
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, qSetLastSeq, i64(g.lastSeq), []byte(id)); err != nil {
		return fmt.Errorf("failed to advance group: %w", err)
	}
	delete(c.dirty, id)
	return nil
}

// flush writes the queued appends and every pending last seq; the writer
// calls it before COMMIT.
func (c *groupCache) flush(ctx context.Context, tx WriteTx) error {
	if err := c.flushPending(ctx, tx); err != nil {
		return err
	}
	for id := range c.dirty {
		if err := c.flushGroup(ctx, tx, id); err != nil {
			return err
		}
	}
	return nil
}

// drop forgets one group after a commit changed its row; the commit has
// flushed it first.
func (c *groupCache) drop(id store.GroupID) {
	delete(c.groups, id)
	delete(c.dirty, id)
}

// forgetMembers forgets every cached member (after revocations).
func (c *groupCache) forgetMembers() {
	for _, g := range c.groups {
		g.members = nil
	}
}

// reset empties the cache; the writer calls it after every rollback.
func (c *groupCache) reset() {
	clear(c.groups)
	clear(c.dirty)
	clear(c.pending)
	c.pending = c.pending[:0]
}
