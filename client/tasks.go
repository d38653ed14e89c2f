package client

import (
	"context"
	"errors"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
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
	// readds: accounts a non-admin removed, which an admin adds back,
	// each with the time before which it is not tried again (zero: now;
	// see readdRetry).
	readds map[store.GroupID]map[identity.AccountID]time.Time
	// members: ask the server whether this device is still in its
	// groups (see checkMemberships).
	members bool
	// leavesQueued: the removals of the members whose leave was stored
	// before this client opened are queued (requeueLeaving).
	leavesQueued bool
	// rejoins: verified rejoin requests of recovered devices (rejoin.go).
	rejoins []*rejoinRequest
}

func (q *taskQueue) readdAccount(g store.GroupID, a identity.AccountID) {
	if q.readds == nil {
		q.readds = make(map[store.GroupID]map[identity.AccountID]time.Time)
	}
	if q.readds[g] == nil {
		q.readds[g] = make(map[identity.AccountID]time.Time)
	}
	q.readds[g][a] = time.Time{}
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
	if !c.tasks.leavesQueued {
		// The queue is in memory: a leave processed before a restart is
		// in the store only.
		if err := c.requeueLeaving(ctx); err != nil {
			return err
		}
		c.tasks.leavesQueued = true
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
		if err := c.runReadds(ctx, conn, g, accounts); err != nil {
			return err
		}
		if len(accounts) == 0 {
			delete(c.tasks.readds, g)
		}
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

// readdRetry is how long a re-add waits after finding the account without
// a device that can be added (ErrNoKeyPackages: its devices have not
// uploaded key packages yet) before it is tried again.
const readdRetry = time.Minute

// runReadds adds back to g the queued accounts (those due), removing from
// accounts those done or given up. A re-add that cannot be done holds up
// no other task: an account the server does not know (deleted) is
// dropped, one without a device that can be added now is tried again
// after readdRetry, and the others are added meanwhile. An error is
// returned only for a failure that is not about the accounts (the
// connection); the queue is then tried again on the next run. Caller holds
// c.mu.
func (c *Client) runReadds(ctx context.Context, conn *wireclient.Client, g store.GroupID, accounts map[identity.AccountID]time.Time) error {
	conv, err := c.st.ConversationByGroup(ctx, g)
	if errors.Is(err, store.ErrNotFound) || err == nil && conv.Left {
		clear(accounts)
		return nil
	}
	if err != nil {
		return err
	}
	now := c.now()
	var kps []*mls.KeyPackage
	var claimed []identity.AccountID
	for acct, notBefore := range accounts {
		if now.Before(notBefore) {
			continue
		}
		got, err := c.claimKeyPackages(ctx, conn, acct)
		switch {
		case errors.Is(err, ErrUnknownAccount):
			c.log.Warn("not adding back a removed member: the account no longer exists", "chat", conv.ID, "account", acct)
			delete(accounts, acct)
		case err != nil:
			return err
		case len(got) == 0:
			c.log.Info("cannot add back a removed member yet: the account has no device that can be added; trying again later",
				"chat", conv.ID, "account", acct, "retry", readdRetry)
			accounts[acct] = now.Add(readdRetry)
		default:
			kps = append(kps, got...)
			claimed = append(claimed, acct)
		}
	}
	if len(kps) == 0 {
		return nil
	}
	err = c.commitChange(ctx, conn, g, kps, nil)
	if errors.Is(err, ErrNotMember) {
		clear(accounts)
		return nil
	}
	if err != nil {
		return err
	}
	for _, acct := range claimed {
		delete(accounts, acct)
	}
	return nil
}
