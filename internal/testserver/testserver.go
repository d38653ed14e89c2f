// Package testserver starts real Parley servers for tests: a server.Server
// on 127.0.0.1:0 over a SQLite store in t.TempDir() (or PostgreSQL when
// PARLEY_TEST_POSTGRES is set and the test asks for it), with its logs
// captured, plus helpers to make accounts and devices and to connect them
// with wireclient.
//
//	srv := testserver.Start(t)
//	alice := srv.NewAccount(t)          // registered, with one device
//	c := srv.Connect(t, alice.Devices[0]) // hello + authenticate
package testserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// URL is the WebSocket URL (ws://127.0.0.1:PORT/v1/ws).
	URL string
	// HTTP is the base URL (http://127.0.0.1:PORT).
	HTTP string
	// Dir is the data directory of the SQLite store.
	Dir   string
	Store store.Store
	// Config is the configuration the server was started with.
	Config server.Config
	logs   *syncBuffer
}

// Option changes the configuration before the server starts.
type Option func(*server.Config)

// WithConfig applies f to the server configuration.
func WithConfig(f func(*server.Config)) Option { return Option(f) }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Start runs a server over SQLite in t.TempDir() until the test ends. Logs
// are captured at debug level (see Logs). Rate limits are off unless an
// option sets them.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return start(t, "", opts)
}

// StartPostgres is Start over PostgreSQL: a fresh schema in the database
// named by PARLEY_TEST_POSTGRES, dropped when the test ends. It skips the
// test when the variable is not set.
func StartPostgres(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return start(t, FreshPostgres(t), opts)
}

// StartDSN is Start over the store named by dsn (a directory or a
// postgres:// URL); several servers may share one PostgreSQL DSN.
func StartDSN(t testing.TB, dsn string, opts ...Option) *Server {
	t.Helper()
	return start(t, dsn, opts)
}

// Backends runs f once per available storage backend: SQLite always,
// PostgreSQL when PARLEY_TEST_POSTGRES is set.
func Backends(t *testing.T, f func(t *testing.T, start func(testing.TB, ...Option) *Server)) {
	t.Run("sqlite", func(t *testing.T) { f(t, Start) })
	t.Run("postgres", func(t *testing.T) {
		if Postgres() == "" {
			t.Skip("PARLEY_TEST_POSTGRES not set")
		}
		f(t, StartPostgres)
	})
}

func start(t testing.TB, dsn string, opts []Option) *Server {
	t.Helper()
	dir := t.TempDir()
	if dsn == "" {
		dsn = dir
	}
	ctx := context.Background()
	st, err := open.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	logs := &syncBuffer{}
	cfg := server.Config{
		Store:      st,
		ServerName: "127.0.0.1",
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Limits: server.Limits{
			DeviceRate: -1, AddrRate: -1, RegisterRate: -1, LookupRate: -1,
			MaxConnectionsPerAddr: 1 << 20,
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	addr := l.Addr().String()
	s := &Server{Server: srv, URL: "ws://" + addr + "/v1/ws", HTTP: "http://" + addr, Dir: dir, Store: st, Config: cfg, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// Logs returns everything the server has logged so far.
func (s *Server) Logs() []byte { return s.logs.Bytes() }

// Account is a test account with its devices.
type Account struct {
	Key     *identity.AccountKey
	ID      identity.AccountID
	Devices []*Device
}

// Device is one device of a test account.
type Device struct {
	Account *Account
	ID      identity.DeviceID
	Key     ed25519.PrivateKey
	Cert    *identity.DeviceCertificate
}

// Ref returns the device's store reference.
func (d *Device) Ref() store.DeviceRef { return store.DeviceRef{Account: d.Account.ID, Device: d.ID} }

// NewIdentity makes an account key and a first device without registering.
func NewIdentity(t testing.TB) *Account {
	t.Helper()
	k, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &Account{Key: k, ID: k.ID()}
	a.NewDevice(t)
	return a
}

// NewDevice adds a device (key and certificate) to the account, without
// telling any server.
func (a *Account) NewDevice(t testing.TB) *Device {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var id identity.DeviceID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	cert, err := identity.IssueDeviceCertificate(a.Key, id, pub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := &Device{Account: a, ID: id, Key: priv, Cert: cert}
	a.Devices = append(a.Devices, d)
	return d
}

// Dial opens a connection and sends hello.
func (s *Server) Dial(t testing.TB) *wireclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wireclient.Dial(ctx, s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if _, err := c.Hello(ctx); err != nil {
		t.Fatalf("hello: %v", err)
	}
	return c
}

// NewAccount makes an account and registers it with its first device.
func (s *Server) NewAccount(t testing.TB) *Account {
	t.Helper()
	a := NewIdentity(t)
	c := s.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Register(ctx, a.Key.Public(), a.Devices[0].Cert, ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	c.CloseNow()
	return a
}

// AddDevice makes a further device of a registered account and registers
// it with an add_device request from the account's first device.
func (s *Server) AddDevice(t testing.TB, a *Account) *Device {
	t.Helper()
	c := s.Connect(t, a.Devices[0])
	defer c.CloseNow()
	d := a.NewDevice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_AddDevice{AddDevice: &wire.AddDevice{DeviceCertificate: d.Cert.Marshal()}}})
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	return d
}

// Connect dials, sends hello and authenticates as the device.
func (s *Server) Connect(t testing.TB, d *Device) *wireclient.Client {
	t.Helper()
	c := s.Dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Authenticate(ctx, d.Account.ID, d.ID, d.Key); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return c
}

// Postgres returns the PostgreSQL URL from PARLEY_TEST_POSTGRES, or "".
func Postgres() string { return os.Getenv("PARLEY_TEST_POSTGRES") }
