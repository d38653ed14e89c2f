// Package devtoken is the bearer token a device uses for the blob service
// without a request on the chat protocol: the device signs (account, device,
// expiry) with its own signature key, and the homeserver checks the signature
// against the device's certificate in its store, refusing revoked devices and
// deleted accounts.
//
// Text form: "pd1." + base64url(payload) + "." + base64url(signature), where
// payload is a version byte, the account id (one length byte), the 16-byte
// device id and the expiry in Unix seconds (8 bytes, big endian), and the
// signature is identity.SignAsDevice over the payload in [Domain].
package devtoken

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob"
	"github.com/parley-im/parley/server/store"
)

// Domain is the signature domain of blob tokens.
const Domain identity.Domain = "parley-blob-token-v1"

// MaxLifetime is the furthest in the future a token's expiry may be; a
// token claiming a later expiry is refused.
const MaxLifetime = 24 * time.Hour

// maxTokenLen bounds the text a verifier decodes.
const maxTokenLen = 512

const (
	prefix  = "pd1."
	version = 1
)

// ErrMalformed means a token is not in the token format.
var ErrMalformed = errors.New("devtoken: malformed token")

// Token is a signed blob token in its text form.
type Token string

// Claims are what a token asserts.
type Claims struct {
	Account identity.AccountID
	Device  identity.DeviceID
	Expires time.Time
}

func (c Claims) payload() ([]byte, error) {
	if len(c.Account) == 0 || len(c.Account) > 255 {
		return nil, fmt.Errorf("%w: account id length", ErrMalformed)
	}
	b := make([]byte, 0, 2+len(c.Account)+identity.DeviceIDSize+8)
	b = append(b, version, byte(len(c.Account)))
	b = append(b, c.Account...)
	b = append(b, c.Device[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix())), nil
}

func parsePayload(b []byte) (Claims, error) {
	var c Claims
	if len(b) < 2 || b[0] != version {
		return c, ErrMalformed
	}
	n := int(b[1])
	if len(b) != 2+n+identity.DeviceIDSize+8 {
		return c, ErrMalformed
	}
	acct, err := identity.ParseAccountID(string(b[2 : 2+n]))
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if string(acct) != string(b[2:2+n]) {
		return c, fmt.Errorf("%w: account id not canonical", ErrMalformed)
	}
	c.Account = acct
	copy(c.Device[:], b[2+n:])
	c.Expires = time.Unix(int64(binary.BigEndian.Uint64(b[2+n+identity.DeviceIDSize:])), 0)
	return c, nil
}

// Mint signs claims with the device's signature private key (rand is used
// only by ECDSA keys).
func Mint(key crypto.Signer, c Claims, rand io.Reader) (Token, error) {
	p, err := c.payload()
	if err != nil {
		return "", err
	}
	sig, err := identity.SignAsDevice(key, Domain, p, rand)
	if err != nil {
		return "", fmt.Errorf("failed to sign blob token: %w", err)
	}
	enc := base64.RawURLEncoding
	return Token(prefix + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)), nil
}

// Parse decodes a token without checking its signature.
func Parse(t Token) (Claims, []byte, []byte, error) {
	s := string(t)
	if len(s) > maxTokenLen || !strings.HasPrefix(s, prefix) {
		return Claims{}, nil, nil, ErrMalformed
	}
	ps, ss, ok := strings.Cut(s[len(prefix):], ".")
	if !ok {
		return Claims{}, nil, nil, ErrMalformed
	}
	p, err := base64.RawURLEncoding.DecodeString(ps)
	if err != nil {
		return Claims{}, nil, nil, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(ss)
	if err != nil {
		return Claims{}, nil, nil, ErrMalformed
	}
	c, err := parsePayload(p)
	return c, p, sig, err
}

// DeviceStore is the part of the homeserver store the verifier needs.
type DeviceStore interface {
	Account(ctx context.Context, id identity.AccountID) (store.Account, error)
	Device(ctx context.Context, ref store.DeviceRef) (store.Device, error)
}

// Verifier is a blob.Authorizer for device-signed tokens.
type Verifier struct {
	Store DeviceStore
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var _ blob.Authorizer = (*Verifier)(nil)

func unauthorized(why string) error { return fmt.Errorf("%w: %s", blob.ErrUnauthorized, why) }

// Authorize implements blob.Authorizer: the token must be well formed,
// unexpired, not expire further than MaxLifetime ahead, and be signed by a
// device of an existing account that is not revoked.
func (v *Verifier) Authorize(ctx context.Context, token string) (identity.AccountID, error) {
	c, p, sig, err := Parse(Token(token))
	if err != nil {
		return "", unauthorized("malformed token")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if !now.Before(c.Expires) {
		return "", unauthorized("token expired")
	}
	if c.Expires.After(now.Add(MaxLifetime)) {
		return "", unauthorized("token lifetime too long")
	}
	if _, err := v.Store.Account(ctx, c.Account); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", unauthorized("unknown account")
		}
		return "", fmt.Errorf("failed to look up account: %w", err)
	}
	d, err := v.Store.Device(ctx, store.DeviceRef{Account: c.Account, Device: c.Device})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", unauthorized("unknown device")
		}
		return "", fmt.Errorf("failed to look up device: %w", err)
	}
	if d.Revoked() {
		return "", unauthorized("device revoked")
	}
	cert, err := identity.ParseDeviceCertificate(d.Certificate)
	if err != nil {
		return "", unauthorized("device certificate unreadable")
	}
	if err := cert.VerifyDeviceSignature(Domain, p, sig); err != nil {
		return "", unauthorized("bad signature")
	}
	return c.Account, nil
}
