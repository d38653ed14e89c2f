package server

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/parley-im/parley/internal/pow"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
)

// Config configures a Server. Store is required; every other field has a
// default.
type Config struct {
	// Store keeps everything durable. The caller opens and closes it.
	Store store.Store
	// Bus carries pushes between connections (default: in-process).
	Bus bus.Bus
	// ServerName is the name devices sign into their authentication and
	// account signatures (default "localhost"). Changing it invalidates no
	// stored data, but clients must use the new name.
	ServerName string
	// Logger receives operational logs (default: discard). Logs never
	// contain message content; they contain network addresses only when
	// LogIPs is set.
	Logger *slog.Logger
	// LogIPs includes client addresses in logs.
	LogIPs bool
	// TLS, if set, makes Serve speak HTTPS. Without it Serve refuses any
	// listener that is not on a loopback address.
	TLS *tls.Config
	// PowBits is the registration proof-of-work difficulty (0 = none).
	PowBits int
	// InviteOnly requires an invite token to register.
	InviteOnly bool
	// TTL is how long undelivered entries are kept (default 30 days).
	TTL time.Duration
	// SweepInterval is how often expired entries are deleted (default 1 min).
	SweepInterval time.Duration
	// EpochGrace is how many epochs behind the current one an application
	// message or proposal may be (older ones get EPOCH_TOO_OLD). 0 is taken
	// as the default, 1: a message sent just before a commit won the race
	// is still accepted.
	EpochGrace uint64
	// ChallengeTTL is how long an auth or pow challenge stays valid
	// (default 60 s for auth; pow challenges live ten times as long).
	ChallengeTTL time.Duration
	// SignatureSkew is the accepted clock difference for signed revocations
	// and deletions (default 5 min).
	SignatureSkew time.Duration
	// MemberCacheTTL bounds how long a group's cached member list is used
	// before it is read again (default: forever with the in-process bus,
	// where every membership change passes through this server; 2 s with
	// any other bus, where other processes change memberships too).
	MemberCacheTTL time.Duration
	// Routes are further HTTP handlers served next to /v1/ws, keyed by
	// http.ServeMux pattern (for example "/v1/blobs/" for file transfer).
	// They must not collide with /v1/ws, /healthz or /metrics.
	Routes map[string]http.Handler
	// Limits protect the service.
	Limits Limits
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the randomness source for challenges (default crypto/rand).
	Rand io.Reader
}

// Limits are the service-protecting limits. Zero fields take defaults; a
// negative rate disables that rate limit.
type Limits struct {
	// MaxConnections bounds open connections (default 100,000).
	MaxConnections int
	// MaxConnectionsPerAddr bounds open connections per client address
	// (default 64).
	MaxConnectionsPerAddr int
	// MaxQueueBytes bounds each connection's send queue (default 4 MiB).
	MaxQueueBytes int
	// AuthTimeout closes connections that have not authenticated a device
	// within it (default 10 min, enough to solve a registration proof of
	// work on a slow device); it bounds what idle unauthenticated
	// connections cost.
	AuthTimeout time.Duration
	// MaxInFlight bounds the requests of one connection handled at once
	// (default 64); further frames wait (backpressure).
	MaxInFlight int
	// DeviceRate and DeviceBurst limit frames per authenticated device
	// (default 500/s, burst 1000).
	DeviceRate  float64
	DeviceBurst int
	// AddrRate and AddrBurst limit connection attempts and frames of
	// unauthenticated connections per address (default 20/s, burst 50).
	AddrRate  float64
	AddrBurst int
	// RegisterRate and RegisterBurst limit registrations per address
	// (default 1 per 10 s, burst 5).
	RegisterRate  float64
	RegisterBurst int
	// LookupRate and LookupBurst limit directory lookups and key package
	// claims per device (default 5/s, burst 50), against enumeration.
	LookupRate  float64
	LookupBurst int
	// MaxRateKeys bounds the keys each rate limiter remembers (default 100,000).
	MaxRateKeys int
	// FetchDefault is the number of deliveries a Fetch returns when it
	// asks for 0 (default 256, at most wire.MaxFetch).
	FetchDefault int
	// MemberCacheGroups bounds the groups whose member lists are cached
	// (default 10,000).
	MemberCacheGroups int
}

func orFloat(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func (l Limits) withDefaults() Limits {
	l.MaxConnections = orInt(l.MaxConnections, 100000)
	l.MaxConnectionsPerAddr = orInt(l.MaxConnectionsPerAddr, 64)
	l.MaxQueueBytes = orInt(l.MaxQueueBytes, 4<<20)
	l.MaxInFlight = orInt(l.MaxInFlight, 64)
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = 10 * time.Minute
	}
	l.DeviceRate = orFloat(l.DeviceRate, 500)
	l.DeviceBurst = orInt(l.DeviceBurst, 1000)
	l.AddrRate = orFloat(l.AddrRate, 20)
	l.AddrBurst = orInt(l.AddrBurst, 50)
	l.RegisterRate = orFloat(l.RegisterRate, 0.1)
	l.RegisterBurst = orInt(l.RegisterBurst, 5)
	l.LookupRate = orFloat(l.LookupRate, 5)
	l.LookupBurst = orInt(l.LookupBurst, 50)
	l.MaxRateKeys = orInt(l.MaxRateKeys, 100000)
	l.FetchDefault = min(orInt(l.FetchDefault, 256), 1024)
	l.MemberCacheGroups = orInt(l.MemberCacheGroups, 10000)
	return l
}

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("server: invalid configuration")

func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.Join(ErrConfig, errors.New("a store is required"))
	}
	if c.PowBits < 0 || c.PowBits > pow.MaxBits {
		return c, errors.Join(ErrConfig, errors.New("pow bits must be between 0 and 40"))
	}
	if c.Bus == nil {
		c.Bus = bus.NewInProcess()
	}
	if _, local := c.Bus.(*bus.InProcess); !local && c.MemberCacheTTL == 0 {
		c.MemberCacheTTL = 2 * time.Second
	}
	if c.ServerName == "" {
		c.ServerName = "localhost"
	}
	if len(c.ServerName) > 255 {
		return c, errors.Join(ErrConfig, errors.New("server name longer than 255 bytes"))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TTL <= 0 {
		c.TTL = 30 * 24 * time.Hour
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Minute
	}
	if c.EpochGrace == 0 {
		c.EpochGrace = 1
	}
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = time.Minute
	}
	if c.SignatureSkew <= 0 {
		c.SignatureSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	c.Limits = c.Limits.withDefaults()
	return c, nil
}

// limit converts a per-second rate for the rate limiter.
func limit(perSecond float64) rate.Limit { return rate.Limit(perSecond) }
