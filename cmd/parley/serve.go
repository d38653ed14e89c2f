package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
	"github.com/parley-im/parley/server/store/sqlite"
)

func init() { addCommand(newServeCmd) }

// serveOptions are the flags of `parley serve`.
type serveOptions struct {
	listen, data, db, serverName string
	natsURL                      string
	tlsCert, tlsKey              string
	powBits                      int
	inviteOnly, logIPs           bool
	logLevel, logFormat          string
	ttl, shutdownTimeout         time.Duration
	keepAlive                    time.Duration
	epochGrace                   uint64
	mailboxLimit                 int
	limits                       server.Limits
	blobs                        blobOptions
}

// storeFlags are the flags that choose the store, shared by serve and admin.
func storeFlags(cmd *cobra.Command, data, db *string) {
	cmd.Flags().StringVar(data, "data", "./parley-data", "data directory (SQLite database)")
	cmd.Flags().StringVar(db, "db", "", "PostgreSQL URL (postgres://...); overrides --data for the database")
}

func newServeCmd(e *env) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Parley homeserver",
		Long: `Run a Parley homeserver.

Every flag can also be set with a PARLEY_* environment variable, e.g.
PARLEY_LISTEN=127.0.0.1:9000 or PARLEY_POW_BITS=20. Flags win.

Without --tls-cert/--tls-key the server only listens on loopback addresses
(put a TLS-terminating proxy in front, or give it a certificate).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), e, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
	storeFlags(cmd, &o.data, &o.db)
	f.StringVar(&o.natsURL, "nats", "", "NATS URL (nats://...) to push across several server processes sharing one PostgreSQL database")
	f.StringVar(&o.serverName, "server-name", "", "the server's public host[:port], signed into logins and usernames (default: the --listen host, or localhost)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.IntVar(&o.powBits, "pow-bits", 20, "registration proof-of-work difficulty in bits (0 disables)")
	f.BoolVar(&o.inviteOnly, "invite-only", false, "require an invite token (parley admin invite) to register")
	f.BoolVar(&o.logIPs, "log-ips", false, "include client IP addresses in logs")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&o.ttl, "ttl", 30*24*time.Hour, "how long undelivered messages are kept")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	f.DurationVar(&o.keepAlive, "tcp-keepalive", time.Minute, "idle time before TCP keep-alive probes a silent connection (4 probes, a quarter of it apart); 0 turns probes off")
	f.Uint64Var(&o.epochGrace, "epoch-grace", 1, "how many epochs behind the current one a group message may be (at least 1)")
	f.IntVar(&o.mailboxLimit, "mailbox-limit", store.DefaultMailboxLimit, "most entries one device's mailbox holds")
	l := &o.limits
	f.IntVar(&l.MaxConnections, "max-connections", 100000, "most open connections")
	f.IntVar(&l.MaxConnectionsPerAddr, "max-connections-per-addr", 64, "most open connections per client address")
	f.IntVar(&l.MaxQueueBytes, "max-queue-bytes", 4<<20, "send queue bound per connection; slower readers are disconnected")
	f.IntVar(&l.MaxInFlight, "max-inflight", 64, "requests of one connection handled at once")
	f.DurationVar(&l.AuthTimeout, "auth-timeout", 10*time.Minute, "close connections that have not authenticated a device within this time")
	f.Float64Var(&l.DeviceRate, "device-rate", 500, "frames per second per device (negative: unlimited)")
	f.IntVar(&l.DeviceBurst, "device-burst", 1000, "burst of --device-rate")
	f.Float64Var(&l.AddrRate, "addr-rate", 20, "connections and unauthenticated frames per second per address (negative: unlimited)")
	f.IntVar(&l.AddrBurst, "addr-burst", 50, "burst of --addr-rate")
	f.Float64Var(&l.RegisterRate, "register-rate", 0.1, "registrations per second per address (negative: unlimited)")
	f.IntVar(&l.RegisterBurst, "register-burst", 5, "burst of --register-rate")
	f.Float64Var(&l.LookupRate, "lookup-rate", 5, "directory look-ups and key package claims per second per device (negative: unlimited)")
	f.IntVar(&l.LookupBurst, "lookup-burst", 50, "burst of --lookup-rate")
	blobFlags(f, &o.blobs)
	return cmd
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("invalid --log-level %q", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("invalid --log-format %q (text or json)", format)}
}

// dsn picks the store: the PostgreSQL URL if given, else the data directory.
func dsn(data, db string) (string, error) {
	if db != "" {
		if !open.IsPostgres(db) {
			return "", usageError{errors.New("--db must be a postgres:// URL")}
		}
		return db, nil
	}
	return data, nil
}

func runServe(ctx context.Context, e *env, o *serveOptions) error {
	log, err := newLogger(e.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("failed to load TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	name := o.serverName
	if name == "" {
		name = "localhost"
		if host, _, err := net.SplitHostPort(o.listen); err == nil && host != "" {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				name = host
			}
		}
	}
	where, err := dsn(o.data, o.db)
	if err != nil {
		return err
	}
	if o.db == "" {
		// The SQLite store caches group state as the folder's only
		// writer: a second server on the same folder would corrupt it.
		if busy, err := sqlite.InUse(o.data); err != nil {
			return fmt.Errorf("failed to open the store: %w", err)
		} else if busy {
			return fmt.Errorf("the data folder %s is in use by another parley serve (or a parley admin command): stop it first, or give this server its own --data", o.data)
		}
	}
	st, err := open.Open(ctx, where, store.Options{MailboxLimit: o.mailboxLimit})
	if err != nil {
		return fmt.Errorf("failed to open the store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("failed to close the store", "err", err)
		}
	}()
	var b bus.Bus
	if o.natsURL != "" {
		nb, err := bus.NewNATS(o.natsURL, bus.NATSOptions{Name: "parley " + name})
		if err != nil {
			return err
		}
		defer nb.Close()
		b = nb
	}
	routes, stopBlobs, err := setupBlobs(ctx, &o.blobs, o.data, st, log)
	if err != nil {
		return err
	}
	defer stopBlobs()
	srv, err := server.New(server.Config{
		Store: st, Bus: b, ServerName: name, Logger: log, LogIPs: o.logIPs, TLS: tlsCfg,
		PowBits: o.powBits, InviteOnly: o.inviteOnly, TTL: o.ttl, EpochGrace: o.epochGrace,
		Limits: o.limits, Routes: routes,
	})
	if err != nil {
		return usageError{err}
	}
	ln, err := listenConfig(o.keepAlive).Listen(ctx, "tcp", o.listen)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); tlsCfg == nil && (!ok || !tcp.IP.IsLoopback()) {
		// Refused here rather than by Serve, so nothing says "serving".
		_ = ln.Close()
		return usageError{fmt.Errorf("--listen %s is not a loopback address, and without TLS the server only listens on loopback: pass --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS-terminating proxy", o.listen)}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "server_name", name,
		"store", storeKind(where), "pow_bits", o.powBits, "invite_only", o.inviteOnly)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if err := <-errc; err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("failed to shut down cleanly: %w", serr)
	}
	log.Info("stopped")
	return nil
}

func storeKind(dsn string) string {
	if open.IsPostgres(dsn) {
		return "postgres"
	}
	return "sqlite"
}

// listenConfig is the listener's TCP set-up. Keep-alive finds peers that
// vanished without closing (a phone that lost its network, a NAT that
// forgot the mapping): after idle seconds of silence 4 probes go out a
// quarter of idle apart, so a dead peer is dropped within 2×idle. Go's
// default (15 s) costs 100,000 idle connections ~6,700 probes a second.
func listenConfig(idle time.Duration) *net.ListenConfig {
	if idle <= 0 {
		return &net.ListenConfig{KeepAlive: -1}
	}
	return &net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: idle, Interval: max(idle/4, time.Second), Count: 4,
	}}
}
