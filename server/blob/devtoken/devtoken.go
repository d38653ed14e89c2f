// Package devtoken is the bearer token a device uses for the blob service
// without a request on the chat protocol: the device signs (account, device,
// expiry) with its own signature key, and the homeserver checks the signature
// against the device's certificate in its store (blob.DeviceAuthorizer),
// refusing revoked devices and deleted accounts. It imports no server code,
// so clients can mint tokens.
//
// Text form: "pd1." + base64url(payload) + "." + base64url(signature), where
// payload is a version byte, the account id (one length byte), the 16-byte
// device id and the expiry in Unix seconds (8 bytes, big endian), and the
// signature is identity.SignAsDevice over the payload in [Domain].
package devtoken

import (
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-im/parley/identity"
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

// Verify checks that sig is the signature of payload by the device cert
// certifies, as returned by [Parse].
func Verify(cert *identity.DeviceCertificate, payload, sig []byte) error {
	if err := cert.VerifyDeviceSignature(Domain, payload, sig); err != nil {
		return fmt.Errorf("failed to verify blob token: %w", err)
	}
	return nil
}
