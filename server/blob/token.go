package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/parley-im/parley/identity"
)

// Tokens mints and checks the bearer tokens of uploads: an account and an
// expiry, authenticated with HMAC-SHA256 under a server secret, so any node
// that shares the secret can check a token without a database lookup. The
// homeserver hands a token to an authenticated device session and plugs
// Tokens in as the [Authorizer].
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
	// Check, if set, is called for every valid token, so that the server
	// can refuse deleted accounts before the token expires.
	Check func(ctx context.Context, account identity.AccountID) error
}

// MinTokenSecret is the smallest accepted secret.
const MinTokenSecret = 32

// maxTokenLen bounds the token text accepted.
const maxTokenLen = 256

const tokenPrefix = "pbt1."

// NewTokens returns a minter and checker of tokens valid for ttl.
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < MinTokenSecret {
		return nil, fmt.Errorf("%w: token secret must be at least %d bytes", ErrBadRequest, MinTokenSecret)
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: append([]byte(nil), secret...), ttl: ttl, now: now}, nil
}

func (t *Tokens) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("parley blob token v1\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// Mint returns a token for account and its expiry.
func (t *Tokens) Mint(account identity.AccountID) (string, time.Time) {
	exp := t.now().Add(t.ttl).Truncate(time.Second)
	payload := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	payload = append(payload, account...)
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(t.mac(payload)), exp
}

// Authorize implements [Authorizer].
func (t *Tokens) Authorize(ctx context.Context, token string) (identity.AccountID, error) {
	if len(token) > maxTokenLen {
		return "", fmt.Errorf("%w: token too long", ErrUnauthorized)
	}
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	p, m, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	enc := base64.RawURLEncoding.Strict()
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) < 8 {
		return "", fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	if !hmac.Equal(mac, t.mac(payload)) {
		return "", fmt.Errorf("%w: bad token signature", ErrUnauthorized)
	}
	exp := int64(binary.BigEndian.Uint64(payload))
	if exp < 0 || !t.now().Before(time.Unix(exp, 0)) {
		return "", fmt.Errorf("%w: token expired", ErrUnauthorized)
	}
	account, err := identity.ParseAccountID(string(payload[8:]))
	if err != nil {
		return "", fmt.Errorf("%w: token names no valid account", ErrUnauthorized)
	}
	if t.Check != nil {
		if err := t.Check(ctx, account); err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnauthorized, err)
		}
	}
	return account, nil
}
