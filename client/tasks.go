package client

import (
	"context"
	"errors"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire/wireclient"
)

// taskQueue is follow-up work found while processing (guarded by c.mu):
// it needs commits or requests, which run after the fetch that found it.
type taskQueue struct {
	// refill: a KeyPackage was used; top up the stock.
	refill bool
	// reconcile: make every group hold exactly this account's current
	// devices (after a link or a revocation).
	reconcile bool
	// removals: accounts to remove from groups (they left, or a non-admin
	// added them).
	removals map[store.GroupID]map[identity.AccountID]bool
	// readds: accounts a non-admin removed, which an admin adds back.
	readds map[store.GroupID]map[identity.AccountID]bool
	// members: ask the server whether this device is still in its
	// groups (see checkMemberships).
	members bool
	// rejoins: verified rejoin requests of recovered devices (rejoin.go).
	rejoins []*rejoinRequest
}

func (q *taskQueue) readdAccount(g store.GroupID, a identity.AccountID) {
	if q.readds == nil {
		q.readds = make(map[store.GroupID]map[identity.AccountID]bool)
	}
	if q.readds[g] == nil {
		q.readds[g] = make(map[identity.AccountID]bool)
	}
	q.readds[g][a] = true
}

func (q *taskQueue) removeAccount(g store.GroupID, a identity.AccountID) {
	if q.removals == nil {
		q.removals = make(map[store.GroupID]map[identity.AccountID]bool)
	}
	if q.removals[g] == nil {
		q.removals[g] = make(map[identity.AccountID]bool)
	}
	q.removals[g][a] = true
}

func (q *taskQueue) leaving(g store.GroupID, a identity.AccountID) bool { return q.removals[g][a] }

// runTasks does the queued follow-up work.
func (c *Client) runTasks(ctx context.Context, conn *wireclient.Client) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fresh.Swap(false) {
		// A removal while offline is not in the fetched log: ask.
		c.tasks.refill, c.tasks.reconcile, c.tasks.members = true, true, true
	}
	if c.tasks.members {
		if err := c.checkMemberships(ctx, conn); err != nil {
			return err
		}
		c.tasks.members = false
	}
	if c.tasks.refill {
		if err := c.refillKeyPackages(ctx, conn, false); err != nil {
			return err
		}
		c.tasks.refill = false
	}
	if c.tasks.reconcile {
		if err := c.reconcileDevices(ctx, conn); err != nil {
			return err
		}
		c.tasks.reconcile = false
	}
	if err := c.runRejoins(ctx, conn); err != nil {
		return err
	}
	if err := c.resendRejoins(ctx, conn); err != nil {
		c.log.Warn("failed to ask again to be added back to the chats", "err", err)
	}
	for g, accounts := range c.tasks.readds {
		conv, err := c.st.ConversationByGroup(ctx, g)
		if err == nil && !conv.Left {
			var list []identity.AccountID
			for a := range accounts {
				list = append(list, a)
			}
			err = c.addAccountsLocked(ctx, conn, conv, list)
		}
		if err != nil && !errors.Is(err, ErrNotMember) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		delete(c.tasks.readds, g)
	}
	for g, accounts := range c.tasks.removals {
		err := c.commitChange(ctx, conn, g, nil, func(m *memberID) bool { return accounts[m.Account] })
		if err != nil && !errors.Is(err, ErrNotMember) {
			return err
		}
		delete(c.tasks.removals, g)
	}
	return nil
}
