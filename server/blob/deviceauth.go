package blob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob/devtoken"
	"github.com/parley-im/parley/server/store"
)

// DeviceStore is the part of the homeserver store the verifier needs.
type DeviceStore interface {
	Account(ctx context.Context, id identity.AccountID) (store.Account, error)
	Device(ctx context.Context, ref store.DeviceRef) (store.Device, error)
}

// DeviceAuthorizer is an Authorizer for device-signed tokens.
type DeviceAuthorizer struct {
	Store DeviceStore
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var _ Authorizer = (*DeviceAuthorizer)(nil)

func unauthorizedf(why string) error { return fmt.Errorf("%w: %s", ErrUnauthorized, why) }

// Authorize implements Authorizer: the token must be well formed,
// unexpired, not expire further than MaxLifetime ahead, and be signed by a
// device of an existing account that is not revoked.
func (v *DeviceAuthorizer) Authorize(ctx context.Context, token string) (identity.AccountID, error) {
	c, p, sig, err := devtoken.Parse(devtoken.Token(token))
	if err != nil {
		return "", unauthorizedf("malformed token")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if !now.Before(c.Expires) {
		return "", unauthorizedf("token expired")
	}
	if c.Expires.After(now.Add(devtoken.MaxLifetime)) {
		return "", unauthorizedf("token lifetime too long")
	}
	if _, err := v.Store.Account(ctx, c.Account); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", unauthorizedf("unknown account")
		}
		return "", fmt.Errorf("failed to look up account: %w", err)
	}
	d, err := v.Store.Device(ctx, store.DeviceRef{Account: c.Account, Device: c.Device})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", unauthorizedf("unknown device")
		}
		return "", fmt.Errorf("failed to look up device: %w", err)
	}
	if d.Revoked() {
		return "", unauthorizedf("device revoked")
	}
	cert, err := identity.ParseDeviceCertificate(d.Certificate)
	if err != nil {
		return "", unauthorizedf("device certificate unreadable")
	}
	if err := devtoken.Verify(cert, p, sig); err != nil {
		return "", unauthorizedf("bad signature")
	}
	return c.Account, nil
}
