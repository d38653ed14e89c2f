package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// ErrInvalidServer is returned for a server host that is not canonical.
var ErrInvalidServer = errors.New("identity: invalid server host")

// usernameClaimVersion is the first byte of an encoded [UsernameClaim].
const usernameClaimVersion = 1

// MaxServerHostLen bounds the server host in a [UsernameClaim].
const MaxServerHostLen = 255

// MaxUsernameClaimSize bounds an encoded [UsernameClaim]; a parser refuses
// anything longer before looking at it.
const MaxUsernameClaimSize = 1 + ed25519.PublicKeySize + 1 + MaxUsernameLen + 1 + MaxServerHostLen + 8 + ed25519.SignatureSize

// UsernameClaim is an account's signed statement that it holds a username
// on one server. A server can refuse to publish a claim but cannot forge
// one, and a claim for one server is not valid on another.
//
// It carries the account public key rather than only the account ID, so
// that it verifies on its own; [UsernameClaim.AccountID] derives the ID. The
// canonical encoding ([UsernameClaim.Marshal]) is:
//
//	struct {
//	    uint8  version = 1;
//	    opaque account_key[32];   // Ed25519
//	    opaque username<3..32>;   // folded form (FoldUsername)
//	    opaque server<1..255>;    // lower-case host[:port]
//	    uint64 created;           // Unix seconds
//	    opaque signature[64];     // account key, domain "username-claim",
//	                              // over all preceding bytes
//	} UsernameClaim;
//
// A UsernameClaim is immutable; its accessors return copies.
type UsernameClaim struct {
	raw        []byte
	accountKey ed25519.PublicKey
	username   string
	server     string
	created    time.Time
	signature  []byte
}

// CanonicalServerHost checks a server host (a DNS name or IP literal, with an
// optional port) and returns its canonical, lower-case form. It allows only
// ASCII letters, digits and ".-:[]".
func CanonicalServerHost(host string) (string, error) {
	if len(host) == 0 || len(host) > MaxServerHostLen {
		return "", fmt.Errorf("%w: must be 1 to %d characters", ErrInvalidServer, MaxServerHostLen)
	}
	b := []byte(host)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return "", fmt.Errorf("%w: character %q is not allowed", ErrInvalidServer, c)
		}
	}
	return string(b), nil
}

// IssueUsernameClaim signs a claim by account to username on server.
// username is folded ([FoldUsername]) and server made canonical
// ([CanonicalServerHost]); created is kept to the second, in UTC.
func IssueUsernameClaim(account *AccountKey, username, server string, created time.Time) (*UsernameClaim, error) {
	folded, err := FoldUsername(username)
	if err != nil {
		return nil, fmt.Errorf("failed to issue username claim: %w", err)
	}
	host, err := CanonicalServerHost(server)
	if err != nil {
		return nil, fmt.Errorf("failed to issue username claim: %w", err)
	}
	secs, err := checkTime(created)
	if err != nil {
		return nil, fmt.Errorf("failed to issue username claim: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint8(usernameClaimVersion)
	b.AddBytes(account.Public())
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(folded)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(host)) })
	b.AddUint64(secs)
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode username claim: %w", err)
	}
	sig, err := account.Sign(DomainUsernameClaim, tbs)
	if err != nil {
		return nil, fmt.Errorf("failed to sign username claim: %w", err)
	}
	return ParseUsernameClaim(append(tbs, sig...))
}

// ParseUsernameClaim decodes a claim. Decoding is strict: the username must
// be in folded form, the server host canonical, and no bytes may trail. It
// does not check the signature: call [UsernameClaim.Verify].
func ParseUsernameClaim(data []byte) (*UsernameClaim, error) {
	if len(data) > MaxUsernameClaimSize {
		return nil, fmt.Errorf("%w: username claim of %d bytes exceeds %d", ErrMalformed, len(data), MaxUsernameClaimSize)
	}
	s := cryptobyte.String(data)
	var (
		c          UsernameClaim
		version    uint8
		accountKey []byte
		username   cryptobyte.String
		server     cryptobyte.String
	)
	if !s.ReadUint8(&version) {
		return nil, fmt.Errorf("%w: empty username claim", ErrMalformed)
	}
	if version != usernameClaimVersion {
		return nil, fmt.Errorf("%w: unknown username claim version %d", ErrMalformed, version)
	}
	if !s.ReadBytes(&accountKey, ed25519.PublicKeySize) ||
		!s.ReadUint8LengthPrefixed(&username) ||
		!s.ReadUint8LengthPrefixed(&server) ||
		!readTime(&s, &c.created) ||
		!s.ReadBytes(&c.signature, ed25519.SignatureSize) {
		return nil, fmt.Errorf("%w: truncated username claim", ErrMalformed)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d trailing bytes after username claim", ErrMalformed, len(s))
	}
	folded, err := FoldUsername(string(username))
	if err != nil || folded != string(username) {
		return nil, fmt.Errorf("%w: username in claim is not a folded username", ErrMalformed)
	}
	host, err := CanonicalServerHost(string(server))
	if err != nil || host != string(server) {
		return nil, fmt.Errorf("%w: server in claim is not a canonical host", ErrMalformed)
	}
	c.raw = bytes.Clone(data)
	c.accountKey = ed25519.PublicKey(c.raw[1 : 1+ed25519.PublicKeySize])
	c.signature = c.raw[len(c.raw)-ed25519.SignatureSize:]
	c.username = folded
	c.server = host
	return &c, nil
}

// Marshal returns the claim's canonical encoding.
func (c *UsernameClaim) Marshal() []byte { return bytes.Clone(c.raw) }

// Verify checks the account key's signature over the claim; it returns an
// error wrapping [ErrBadSignature] if it does not verify. A server must also
// check that [UsernameClaim.Server] is itself and that the account is the
// one asking.
func (c *UsernameClaim) Verify() error {
	tbs := c.raw[:len(c.raw)-ed25519.SignatureSize]
	if err := VerifyAccountSignature(c.accountKey, DomainUsernameClaim, tbs, c.signature); err != nil {
		return fmt.Errorf("failed to verify username claim: %w", err)
	}
	return nil
}

// Username returns the claimed username, in folded form.
func (c *UsernameClaim) Username() string { return c.username }

// Skeleton returns the uniqueness key of the claimed username
// ([UsernameSkeleton]).
func (c *UsernameClaim) Skeleton() string { return skeleton(c.username) }

// Server returns the canonical host of the server the claim is for.
func (c *UsernameClaim) Server() string { return c.server }

// Address returns "username@server".
func (c *UsernameClaim) Address() string { return c.username + "@" + c.server }

// AccountKey returns the public key of the claiming account.
func (c *UsernameClaim) AccountKey() ed25519.PublicKey { return bytes.Clone(c.accountKey) }

// AccountID returns the ID of the claiming account.
func (c *UsernameClaim) AccountID() AccountID { return AccountIDFromKey(c.accountKey) }

// Created returns the claim's creation time (UTC, whole seconds).
func (c *UsernameClaim) Created() time.Time { return c.created }
