package client

import (
	"context"
	"fmt"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// lastResortKey is the setting naming our last-resort KeyPackage, which is
// kept after use.
const lastResortKey = "kp.last-resort"

// refillKeyPackages tops the server's stock of our one-time KeyPackages up
// to Options.KeyPackageStock when it is below half (always when initial,
// which also sets the last-resort one). Private parts are stored before
// the public parts are uploaded.
func (c *Client) refillKeyPackages(ctx context.Context, conn *wireclient.Client, initial bool) error {
	r, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_CountKeyPackages{CountKeyPackages: &wire.CountKeyPackages{}}})
	if err != nil {
		return fmt.Errorf("failed to count key packages: %w", err)
	}
	have := int(r.GetCountKeyPackages().GetCount())
	if !initial && have >= c.opts.KeyPackageStock/2 {
		return nil
	}
	n := c.opts.KeyPackageStock - have
	if initial {
		n++
	}
	if n <= 0 {
		return nil
	}
	cred := mls.Credential{Identity: c.id.Certificate.Marshal()}
	type kp struct {
		ref  store.KeyPackageRef
		priv []byte
		pub  []byte
	}
	kps := make([]kp, 0, n)
	for range n {
		b, err := mls.NewKeyPackage(c.cfg, cred, c.signer)
		if err != nil {
			return fmt.Errorf("failed to make key package: %w", err)
		}
		priv, err := b.MarshalBinary()
		if err != nil {
			return fmt.Errorf("failed to encode key package: %w", err)
		}
		kps = append(kps, kp{ref: store.KeyPackageRef(b.KeyPackage.Ref()), priv: priv, pub: b.KeyPackage.Bytes()})
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		for i, k := range kps {
			if err := tx.PutKeyPackage(k.ref, k.priv, c.now()); err != nil {
				return err
			}
			if initial && i == len(kps)-1 {
				if err := tx.SetSetting(lastResortKey, fmt.Sprintf("%x", []byte(k.ref))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to store key packages: %w", err)
	}
	req := &wire.UploadKeyPackages{}
	for i, k := range kps {
		if initial && i == len(kps)-1 {
			req.LastResort = k.pub
			continue
		}
		req.KeyPackages = append(req.KeyPackages, k.pub)
	}
	if _, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_UploadKeyPackages{UploadKeyPackages: req}}); err != nil {
		return fmt.Errorf("failed to upload key packages: %w", err)
	}
	return nil
}
