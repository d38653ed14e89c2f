package blob

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"time"

	"github.com/parley-im/parley/identity"
)

// Defaults for [Config].
const (
	// DefaultMaxSize admits the ciphertext of a 4 GiB file (the encryption
	// adds a header and 16 bytes per 64 KiB chunk, about 1 MiB in all).
	DefaultMaxSize    = 4<<30 + 2<<20
	DefaultQuota      = 16 << 30
	DefaultQuotaBlobs = 100000
	DefaultUploadTTL  = 24 * time.Hour
	DefaultRetention  = 30 * 24 * time.Hour
	DefaultUploads    = 16
	DefaultIdle       = time.Minute
)

// Config configures the blob service; zero fields get defaults.
type Config struct {
	// MaxSize is the largest blob accepted, in bytes.
	MaxSize int64
	// Quota is the most bytes one account may hold in blobs, finished or
	// not, counted at their declared size. Negative means unlimited.
	Quota int64
	// QuotaBlobs is the most blobs one account may hold. Negative means
	// unlimited.
	QuotaBlobs int
	// UploadTTL is how long an unfinished upload may go without progress
	// before it is deleted.
	UploadTTL time.Duration
	// Retention is how long a finished blob is kept. The server cannot see
	// which messages reference a blob, so it keeps each for this long, like
	// undelivered messages.
	Retention time.Duration
	// MaxUploads bounds concurrent append requests, and with them the
	// buffer memory (MaxUploads × the backend's segment size).
	MaxUploads int
	// IdleTimeout is how long an append may receive nothing before the
	// connection is dropped (what arrived is kept), so a stalled client
	// cannot hold an upload slot.
	IdleTimeout time.Duration
	// Checkpoint is how many bytes an append stores between durable
	// checkpoints (default CheckpointSize).
	Checkpoint int64
	// Now and Rand default to time.Now and crypto/rand.Reader.
	Now  func() time.Time
	Rand io.Reader
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	switch {
	case c.Quota == 0:
		c.Quota = DefaultQuota
	case c.Quota < 0:
		c.Quota = 0 // the MetaStore's "unlimited"
	}
	switch {
	case c.QuotaBlobs == 0:
		c.QuotaBlobs = DefaultQuotaBlobs
	case c.QuotaBlobs < 0:
		c.QuotaBlobs = 0
	}
	if c.UploadTTL <= 0 {
		c.UploadTTL = DefaultUploadTTL
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = DefaultUploads
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdle
	}
	if c.Checkpoint <= 0 {
		c.Checkpoint = CheckpointSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Authorizer maps the bearer token of an upload request to an account.
type Authorizer interface {
	// Authorize returns the account a token belongs to, or an error
	// wrapping ErrUnauthorized.
	Authorize(ctx context.Context, token string) (identity.AccountID, error)
}

// AuthorizerFunc adapts a function to [Authorizer].
type AuthorizerFunc func(ctx context.Context, token string) (identity.AccountID, error)

// Authorize implements [Authorizer].
func (f AuthorizerFunc) Authorize(ctx context.Context, token string) (identity.AccountID, error) {
	return f(ctx, token)
}
