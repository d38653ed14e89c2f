package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
)

// errBadMember means a group member's credential or key does not check out.
var errBadMember = errors.New("client: member credential does not verify")

// memberID is a verified MLS member: the device certificate in its
// credential verifies under its account key, and the leaf's signature key
// is the certificate's.
type memberID struct {
	Account identity.AccountID
	Device  identity.DeviceID
	cert    *identity.DeviceCertificate
}

// validateCredential is the MLS CredentialValidator: every credential must
// be a device certificate signed by its account key.
func (c *Client) validateCredential(cred mls.Credential) error {
	_, err := c.certOf(cred)
	return err
}

func (c *Client) certOf(cred mls.Credential) (*identity.DeviceCertificate, error) {
	if v, ok := c.members.Load(string(cred.Identity)); ok {
		return v.(*memberID).cert, nil
	}
	cert, err := identity.ParseDeviceCertificate(cred.Identity)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMember, err)
	}
	if err := cert.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMember, err)
	}
	c.members.Store(string(cred.Identity), &memberID{Account: cert.AccountID(), Device: cert.DeviceID(), cert: cert})
	return cert, nil
}

// verifyMember checks a member's certificate chain and that its leaf
// signature key is the certified device key.
func (c *Client) verifyMember(m mls.Member) (*memberID, error) {
	cert, err := c.certOf(m.Credential)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cert.SignatureKey(), m.SignatureKey) {
		return nil, fmt.Errorf("%w: leaf key is not the certified device key", errBadMember)
	}
	return &memberID{Account: cert.AccountID(), Device: cert.DeviceID(), cert: cert}, nil
}

// groupMembers lists the verified members of g by leaf.
func (c *Client) groupMembers(g *mls.Group) (map[mls.LeafIndex]*memberID, error) {
	out := make(map[mls.LeafIndex]*memberID)
	for _, m := range g.Members() {
		id, err := c.verifyMember(m)
		if err != nil {
			return nil, err
		}
		out[m.Index] = id
	}
	return out, nil
}

// accountsOf returns the sorted distinct accounts among members.
func accountsOf(ms map[mls.LeafIndex]*memberID) []identity.AccountID {
	var out []identity.AccountID
	for _, m := range ms {
		if !slices.Contains(out, m.Account) {
			out = append(out, m.Account)
		}
	}
	slices.Sort(out)
	return out
}

// group returns the in-memory MLS state of g, loading it from the store.
// It returns nil, nil when this device holds no state for g. Caller holds
// c.mu.
func (c *Client) group(ctx context.Context, g store.GroupID) (*mls.Group, error) {
	if grp, ok := c.groups[g]; ok {
		return grp, nil
	}
	raw, err := c.st.GroupState(ctx, g)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to load group state: %w", err)
	}
	grp, err := mls.Unmarshal(raw, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to decode group state: %w", err)
	}
	c.groups[g] = grp
	return grp, nil
}

// saveGroup persists g's state in its own transaction. Caller holds c.mu.
func (c *Client) saveGroup(ctx context.Context, grp *mls.Group) error {
	raw, err := grp.Marshal()
	if err != nil {
		return fmt.Errorf("failed to encode group state: %w", err)
	}
	gid := store.GroupID(grp.ID())
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutGroupState(gid, raw, c.now()) })
}

// forgetGroups drops the in-memory states so they are reloaded from the
// store (after a failed write, memory may be ahead of disk).
func (c *Client) forgetGroups() {
	clear(c.groups)
	clear(c.cursors)
	clear(c.joined)
}

// cursor returns the last processed sequence number of a stream.
func (c *Client) cursor(ctx context.Context, s store.Stream) (uint64, error) {
	if v, ok := c.cursors[s]; ok {
		return v, nil
	}
	v, err := c.st.Cursor(ctx, s)
	if errors.Is(err, store.ErrNotFound) {
		v, err = 0, nil
	}
	if err != nil {
		return 0, err
	}
	c.cursors[s] = v
	return v, nil
}

func devBytes(d identity.DeviceID) []byte { return d[:] }

// ChatDevices lists the devices in chat's MLS group, by account, as this
// device's group state holds them (empty when this device is not in the
// group).
func (c *Client) ChatDevices(ctx context.Context, chat ChatID) (map[identity.AccountID][]identity.DeviceID, error) {
	conv, err := c.st.Conversation(ctx, chat)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownChat, chat)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[identity.AccountID][]identity.DeviceID{}
	grp, err := c.group(ctx, conv.Group)
	if err != nil || grp == nil || !grp.Active() {
		return out, err
	}
	members, err := c.groupMembers(grp)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		out[m.Account] = append(out[m.Account], m.Device)
	}
	return out, nil
}
