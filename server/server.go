// Package server is the Parley homeserver: it relays end-to-end encrypted
// traffic between devices over WebSockets and stores only what routing
// needs (see server/store).
//
// Create a [Server] with [New], run it with [Server.Serve] on a listener,
// stop it with [Server.Shutdown]. The HTTP surface is:
//
//	/v1/ws    the device protocol (package wire, docs/protocol.md)
//	/healthz  200 "ok" while serving, 503 while shutting down
//	/metrics  Prometheus metrics
//
// Lock order, where locks nest: the bus's lock is held while a connection's
// send queue lock (transport.Conn) is taken, never the other way round.
// Server.mu (sessions and per-address counts) nests with nothing. An idle
// connection holds no goroutine: see package transport.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-im/parley/server/metrics"
	"github.com/parley-im/parley/server/ratelimit"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/transport"
	"github.com/parley-im/parley/wire"
)

// ErrPlaintext is returned by Serve for a non-loopback listener without TLS.
var ErrPlaintext = errors.New("server: plain HTTP is only allowed on loopback addresses; configure TLS")

// Server is a Parley homeserver.
type Server struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	metrics *metrics.Metrics
	kinds   map[string]metrics.Kind // per request kind, read-only after New

	// asyncStore is store if it appends asynchronously (a send then
	// holds no goroutine while it waits for durability), else nil.
	asyncStore store.AsyncAppender

	groupMessages prometheus.Counter // parley_messages_total{kind="group"}
	members       *memberCache
	stopInval     func() // ends the bus's membership invalidations to members
	workers       *workers

	addrLimiter     *ratelimit.Keyed[string]
	deviceLimiter   *ratelimit.Keyed[store.DeviceRef]
	registerLimiter *ratelimit.Keyed[string]
	lookupLimiter   *ratelimit.Keyed[store.DeviceRef]

	httpSrv  *http.Server
	stopping atomic.Bool
	nextID   atomic.Uint64

	mu       sync.Mutex
	sessions map[*session]struct{}
	conns    int            // admitted connections (sessions and upgrades in progress)
	perAddr  map[string]int // admitted connections per client address
	wg       sync.WaitGroup // one per session

	sweepOnce sync.Once
	sweepStop chan struct{}
	sweepDone chan struct{}
}

// New checks cfg and returns a server that is not yet serving.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := cfg.Limits
	s := &Server{
		cfg:             cfg,
		store:           cfg.Store,
		log:             cfg.Logger,
		metrics:         metrics.New(),
		members:         newMemberCache(cfg.Store, l.MemberCacheGroups, cfg.MemberCacheTTL, cfg.Now),
		addrLimiter:     ratelimit.New[string](ratelimit.Limits{Rate: limit(l.AddrRate), Burst: l.AddrBurst}, l.MaxRateKeys, cfg.Now),
		deviceLimiter:   ratelimit.New[store.DeviceRef](ratelimit.Limits{Rate: limit(l.DeviceRate), Burst: l.DeviceBurst}, l.MaxRateKeys, cfg.Now),
		registerLimiter: ratelimit.New[string](ratelimit.Limits{Rate: limit(l.RegisterRate), Burst: l.RegisterBurst}, l.MaxRateKeys, cfg.Now),
		lookupLimiter:   ratelimit.New[store.DeviceRef](ratelimit.Limits{Rate: limit(l.LookupRate), Burst: l.LookupBurst}, l.MaxRateKeys, cfg.Now),
		workers:         newWorkers(),
		sessions:        make(map[*session]struct{}),
		perAddr:         make(map[string]int),
		sweepStop:       make(chan struct{}),
		sweepDone:       make(chan struct{}),
	}
	s.asyncStore, _ = cfg.Store.(store.AsyncAppender)
	s.stopInval, err = cfg.Bus.OnInvalidate(s.members.invalidateGroups)
	if err != nil {
		return nil, fmt.Errorf("failed to follow membership changes on the bus: %w", err)
	}
	s.kinds = s.metrics.Kinds(requestKinds())
	s.groupMessages = s.metrics.Messages.WithLabelValues("group")
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		TLSConfig:         cfg.TLS,
	}
	return s, nil
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Handler returns the server's HTTP handler, for embedding in another
// HTTP server. Serve uses it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	for pattern, h := range s.cfg.Routes {
		mux.Handle(pattern, h)
	}
	return mux
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Serve accepts connections on l until Shutdown. It uses TLS when the
// config has it and refuses plain HTTP on anything but loopback.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.TLS == nil && !isLoopback(l.Addr()) {
		return ErrPlaintext
	}
	s.sweepOnce.Do(func() { go s.sweep() })
	var err error
	if s.cfg.TLS != nil {
		err = s.httpSrv.ServeTLS(l, "", "")
	} else {
		err = s.httpSrv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("failed to serve: %w", err)
}

// Shutdown stops accepting connections, lets every connection finish the
// requests it is handling (their writes become durable), flushes their send
// queues, closes them with "going away", and stops the expiry sweep. It
// returns ctx's error if that takes longer than ctx allows, after closing
// the remaining connections at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	err := s.httpSrv.Shutdown(ctx)
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.stop()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, sess := range sessions {
			sess.conn.CloseNow()
		}
		<-done
		err = errors.Join(err, ctx.Err())
	}
	s.stopInval()
	s.sweepOnce.Do(func() { close(s.sweepDone) })
	select {
	case <-s.sweepStop:
	default:
		close(s.sweepStop)
	}
	<-s.sweepDone
	return err
}

// sweep deletes expired entries every SweepInterval.
func (s *Server) sweep() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.sweepStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := s.store.Expire(ctx, s.cfg.Now().Add(-s.cfg.TTL))
		cancel()
		if err != nil {
			s.log.Warn("expiry sweep failed", "err", err)
			continue
		}
		s.metrics.Expired.WithLabelValues("group_log").Add(float64(res.LogEntries))
		s.metrics.Expired.WithLabelValues("mailbox").Add(float64(res.MailboxEntries))
	}
}

// clientAddr is the client's IP address (without port), used for limits.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		refuse(w, http.StatusServiceUnavailable, wire.ErrorCode_UNAVAILABLE, "the server is shutting down; reconnect shortly", time.Second)
		return
	}
	addr := clientAddr(r)
	// Limits are checked before the upgrade: a refused client costs an
	// HTTP answer, not a WebSocket handshake and close handshake.
	if code, msg, retry := s.admit(addr); code != wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
		s.metrics.Rejects.WithLabelValues(code.String()).Inc()
		refuse(w, http.StatusTooManyRequests, code, msg, retry)
		return
	}
	conn, err := transport.Accept(w, r, transport.Options{
		MaxQueueBytes:  s.cfg.Limits.MaxQueueBytes,
		OnQueue:        func(d int) { s.metrics.SendQueueBytes.Add(float64(d)) },
		OnSlowConsumer: func() { s.metrics.SlowConsumers.Inc() },
	})
	if err != nil {
		s.unadmit(addr)
		return
	}
	id := s.nextID.Add(1)
	sess := newSession(s, conn, addr, id)
	if !s.register(sess) {
		// Shutdown began during the upgrade.
		s.unadmit(addr)
		_ = conn.Send(&wire.Frame{Body: &wire.Frame_Error{Error: wire.NewError(wire.ErrorCode_UNAVAILABLE, "the server is shutting down; reconnect shortly")}})
		conn.Close(transport.StatusGoingAway, "shutting down")
		conn.Start(discard{}) // read the client's answer to the close frame
		<-conn.Done()
		return
	}
	// The session holds no goroutine while the connection is idle; the
	// request and its context are not kept: the session needs neither.
	sess.start()
}

// refuse answers an upgrade request with an HTTP error carrying a protocol
// error code (see wire.ErrorHeader).
func refuse(w http.ResponseWriter, status int, code wire.ErrorCode, msg string, retry time.Duration) {
	h := w.Header()
	h.Set(wire.ErrorHeader, code.String())
	h.Set("Retry-After", strconv.FormatInt(int64(max(1, (retry+time.Second-1)/time.Second)), 10))
	h.Set("Connection", "close")
	http.Error(w, msg, status)
}

// discard is the transport.Handler of a refused connection: it ignores
// messages while the close handshake finishes.
type discard struct{}

// Message implements transport.Handler.
func (discard) Message([]byte) {}

// End implements transport.Handler.
func (discard) End(error) {}

// connRetry is the Retry-After of a refusal by a connection limit: how
// soon a retry may find a free slot is unknown, so clients wait a little.
const connRetry = 5 * time.Second

// admit counts a new connection from addr against the limits; a refusal
// comes with its code, sentence and retry time. An admitted connection
// holds its slots until unadmit or, once registered, release.
func (s *Server) admit(addr string) (wire.ErrorCode, string, time.Duration) {
	if ok, retry := s.addrLimiter.Allow(addr); !ok {
		return wire.ErrorCode_RATE_LIMITED, "too many connection attempts from your address; wait and retry", retry
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns >= s.cfg.Limits.MaxConnections {
		return wire.ErrorCode_TOO_MANY_CONNECTIONS, "the server has too many connections; retry later", connRetry
	}
	if s.perAddr[addr] >= s.cfg.Limits.MaxConnectionsPerAddr {
		return wire.ErrorCode_TOO_MANY_CONNECTIONS, "too many connections from your address; close some and retry", connRetry
	}
	s.perAddr[addr]++
	s.conns++
	return wire.ErrorCode_ERROR_CODE_UNSPECIFIED, "", 0
}

// unadmit gives back the slots of an admitted connection that did not
// become a session.
func (s *Server) unadmit(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns--
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
}

// register makes an admitted connection's session known to Shutdown; it
// fails once Shutdown has begun.
func (s *Server) register(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.metrics.Connections.Inc()
	return true
}

func (s *Server) release(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.unadmit(sess.addr)
	s.metrics.Connections.Dec()
	s.wg.Done()
}
