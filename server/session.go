package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/internal/pow"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/transport"
	"github.com/parley-im/parley/wire"
)

// session is the server's state for one connection. The connection hands
// it one WebSocket message at a time (Message, on a read worker, see
// package transport), and it decodes and handles the frames in order: the
// connection-state requests (hello, registration, authentication, ping) are
// answered right there; every other request is handed to a worker of its
// own, at most Limits.MaxInFlight at once, so their answers may come back
// in a different order than the requests. Fields below "written by the
// frame handler" are only touched from Message, one message at a time.
// An idle session has no goroutine.
type session struct {
	srv  *Server
	conn *transport.Conn
	addr string
	id   uint64
	log  *slog.Logger

	ctx    context.Context // cancelled by stop (server shutdown)
	cancel context.CancelFunc
	// handlerCtx is ctx without its cancellation: handlers run to
	// completion even during shutdown, so an accepted write is durable
	// before its answer is sent.
	handlerCtx context.Context
	authTimer  *time.Timer // nil once authenticated or without a deadline

	inflight chan struct{} // semaphore of MaxInFlight
	handlers sync.WaitGroup

	// Written by the frame handler only (see above); request handlers get
	// the device as a parameter.
	hello    bool
	powChal  *issued
	authChal *issued
	device   store.DeviceRef
	authed   bool
	// authDone is authed for the auth deadline timer, which runs on its
	// own goroutine.
	authDone atomic.Bool
	unsub    func()
}

// issued is a single-use challenge and when it was issued.
type issued struct {
	value []byte
	at    time.Time
}

func newSession(s *Server, conn *transport.Conn, addr string, id uint64) *session {
	log := s.log
	if s.cfg.LogIPs {
		log = log.With("addr", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		srv: s, conn: conn, addr: addr, id: id, log: log,
		ctx: ctx, cancel: cancel, handlerCtx: context.WithoutCancel(ctx),
		inflight: make(chan struct{}, s.cfg.Limits.MaxInFlight),
	}
}

// stop asks the session to stop reading, finish its handlers, flush and
// close (server shutdown).
func (ss *session) stop() {
	ss.cancel()
	ss.conn.StopReading()
}

// start begins serving the connection; it does not block. The session
// ends (and is released) after the connection's End.
func (ss *session) start() {
	ss.log.Debug("connection opened", "conn", ss.id)
	if d := ss.srv.cfg.Limits.AuthTimeout; d > 0 {
		ss.authTimer = time.AfterFunc(d, func() {
			if !ss.authDone.Load() {
				ss.reject(0, wire.NewError(wire.ErrorCode_UNAUTHENTICATED, "the connection did not authenticate within %v; reconnect and authenticate", d))
				ss.conn.Close(transport.StatusPolicyViolation, "authentication timeout")
			}
		})
	}
	ss.conn.Start(ss)
}

// Message implements transport.Handler.
func (ss *session) Message(msg []byte) {
	if ss.ctx.Err() != nil {
		return
	}
	ss.handleMessage(ss.ctx, msg)
}

// End implements transport.Handler: the connection delivers no more
// messages, so the session finishes on a goroutine of its own.
func (ss *session) End(err error) {
	reason := ""
	switch {
	case errors.Is(err, transport.ErrNotBinary):
		ss.reject(0, wire.NewError(wire.ErrorCode_MALFORMED, "frames must be sent as binary WebSocket messages"))
		reason = "text message"
	case ss.ctx.Err() != nil:
		reason = "server shutting down"
	}
	go ss.finish(reason)
}

// finish lets running handlers finish (their writes become durable and
// their answers are queued), then flushes, closes and releases the
// session.
func (ss *session) finish(reason string) {
	defer ss.srv.release(ss)
	defer ss.cancel()
	if ss.authTimer != nil {
		ss.authTimer.Stop()
	}
	ss.handlers.Wait()
	if ss.unsub != nil {
		ss.unsub()
		ss.srv.metrics.Authenticated.Dec()
	}
	code := transport.StatusNormalClosure
	if ss.srv.stopping.Load() {
		code = transport.StatusGoingAway
		reason = "server shutting down"
	}
	ss.conn.Close(code, reason)
	<-ss.conn.Done()
	ss.log.Debug("connection closed", "conn", ss.id)
}

// handleMessage decodes the frames of one message and handles them in order.
func (ss *session) handleMessage(ctx context.Context, msg []byte) {
	derr := wire.DecodeMessage(msg, func(f *wire.Frame, err error) error {
		ss.handleFrame(ctx, f, err)
		return ctx.Err()
	})
	if derr != nil && ctx.Err() == nil {
		code := wire.ErrorCode_MALFORMED
		if errors.Is(derr, wire.ErrTooLarge) {
			code = wire.ErrorCode_TOO_LARGE
		}
		ss.reject(0, wire.NewError(code, "the message could not be split into frames (%v); frames after the fault were dropped", derr))
	}
}

func (ss *session) sendError(id uint64, e *wire.Error) {
	_ = ss.conn.Send(&wire.Frame{Id: id, Body: &wire.Frame_Error{Error: e}})
}

// reject counts and sends an error answer.
func (ss *session) reject(id uint64, e *wire.Error) {
	ss.srv.metrics.Rejects.WithLabelValues(e.GetCode().String()).Inc()
	ss.sendError(id, e)
}

// requestOneof is the oneof descriptor naming request kinds (for metrics).
var requestOneof = (&wire.Request{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")

// requestKinds lists every request kind name, plus "ack" and "unknown".
func requestKinds() []string {
	names := []string{"ack", "unknown"}
	fields := requestOneof.Fields()
	for i := 0; i < fields.Len(); i++ {
		names = append(names, string(fields.Get(i).Name()))
	}
	return names
}

func requestKind(r *wire.Request) string {
	fd := r.ProtoReflect().WhichOneof(requestOneof)
	if fd == nil {
		return "unknown"
	}
	return string(fd.Name())
}

func (ss *session) handleFrame(ctx context.Context, f *wire.Frame, decodeErr error) {
	if decodeErr != nil {
		code := wire.ErrorCode_MALFORMED
		if errors.Is(decodeErr, wire.ErrTooLarge) {
			code = wire.ErrorCode_TOO_LARGE
		}
		ss.reject(f.GetId(), wire.NewError(code, "the frame was refused: %v", decodeErr))
		return
	}
	if !ss.allow(f.GetId()) {
		return
	}
	switch body := f.GetBody().(type) {
	case *wire.Frame_Request:
		ss.handleRequest(ctx, f.GetId(), body.Request)
	case *wire.Frame_Ack:
		if !ss.requireAuth(f.GetId()) {
			return
		}
		dev, id := ss.device, f.GetId()
		ss.spawn(ctx, id, "ack", func(ctx context.Context) (*wire.Response, error) {
			return ss.srv.handleAck(ctx, dev, body.Ack, id != 0)
		})
	case nil:
		ss.reject(f.GetId(), wire.NewError(wire.ErrorCode_UNKNOWN_REQUEST, "the frame has no body this server understands"))
	default:
		ss.reject(f.GetId(), wire.NewError(wire.ErrorCode_MALFORMED, "clients send requests and acks only"))
	}
}

// maxRatePause bounds how long a rate-limited connection is not read.
const maxRatePause = 5 * time.Second

// allow applies the per-device or per-address frame rate limit.
func (ss *session) allow(id uint64) bool {
	var ok bool
	var retry time.Duration
	if ss.authed {
		ok, retry = ss.srv.deviceLimiter.Allow(ss.device)
	} else {
		ok, retry = ss.srv.addrLimiter.Allow(ss.addr)
	}
	if !ok {
		e := wire.NewError(wire.ErrorCode_RATE_LIMITED, "too many requests; retry after the given delay")
		e.RetryAfterMs = uint32(min(retry.Milliseconds()+1, 1<<31))
		ss.reject(id, e)
		// Backpressure: a client that ignores retry_after is not read
		// (and costs nothing) until the limiter would let it through.
		ss.conn.PauseReading(min(retry, maxRatePause))
	}
	return ok
}

func (ss *session) requireAuth(id uint64) bool {
	if !ss.authed {
		ss.reject(id, wire.NewError(wire.ErrorCode_UNAUTHENTICATED, "authenticate the device first (auth_challenge, then authenticate)"))
		return false
	}
	return true
}

func (ss *session) handleRequest(ctx context.Context, id uint64, req *wire.Request) {
	if !ss.hello {
		if h, ok := req.GetKind().(*wire.Request_Hello); ok {
			r, err := ss.handleHello(h.Hello)
			ss.answer(id, "hello", time.Now(), r, err)
			return
		}
		ss.reject(id, wire.NewError(wire.ErrorCode_HELLO_REQUIRED, "the first request must be hello"))
		return
	}
	kind := requestKind(req)
	if k, ok := ss.srv.kinds[kind]; ok {
		k.Requests.Inc()
	}
	start := time.Now()
	var r *wire.Response
	var err error
	switch k := req.GetKind().(type) {
	case *wire.Request_Hello:
		err = wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "hello was already sent on this connection")
	case *wire.Request_Ping:
		r = &wire.Response{Kind: &wire.Response_Ping{Ping: &wire.PingResponse{UnixTime: ss.srv.cfg.Now().Unix()}}}
	case *wire.Request_RegisterChallenge:
		r, err = ss.handleRegisterChallenge()
	case *wire.Request_Register:
		r, err = ss.handleRegister(ctx, k.Register)
	case *wire.Request_AuthChallenge:
		r, err = ss.handleAuthChallenge()
	case *wire.Request_Authenticate:
		r, err = ss.handleAuthenticate(ctx, k.Authenticate)
	default:
		if send, ok := k.(*wire.Request_Send); ok && ss.srv.asyncStore != nil {
			if ss.requireAuth(id) {
				ss.startSend(ctx, id, kind, ss.srv.asyncStore, send.Send)
			}
			return
		}
		h := ss.srv.handlerFor(ss, id, req)
		if h == nil {
			err = wire.NewError(wire.ErrorCode_UNKNOWN_REQUEST, "this server does not know that request kind")
			break
		}
		if !ss.requireAuth(id) {
			return
		}
		ss.spawn(ctx, id, kind, h)
		return
	}
	ss.answer(id, kind, start, r, err)
}

// spawn runs h in its own goroutine once an in-flight slot is free.
func (ss *session) spawn(ctx context.Context, id uint64, kind string, h handlerFunc) {
	select {
	case ss.inflight <- struct{}{}:
	case <-ctx.Done():
		ss.reject(id, wire.NewError(wire.ErrorCode_UNAVAILABLE, "the server is shutting down; retry on a new connection"))
		return
	}
	ss.handlers.Add(1)
	start := time.Now()
	ss.srv.workers.run(func() {
		defer func() { <-ss.inflight; ss.handlers.Done() }()
		r, err := h(ss.handlerCtx)
		ss.answer(id, kind, start, r, err)
	})
}

// answer sends a response or the error for it. A nil response with a nil
// error means the handler answered itself (or the frame needs no answer).
// startSend is spawn for a send to a store that appends asynchronously:
// it holds a place among the connection's requests in flight like a
// handler, but no goroutine waits while the store makes the message
// durable; the store's writer answers.
func (ss *session) startSend(ctx context.Context, id uint64, kind string, as store.AsyncAppender, r *wire.Send) {
	select {
	case ss.inflight <- struct{}{}:
	case <-ctx.Done():
		ss.reject(id, wire.NewError(wire.ErrorCode_UNAVAILABLE, "the server is shutting down; retry on a new connection"))
		return
	}
	ss.handlers.Add(1)
	start := time.Now()
	ss.srv.startSend(ss.handlerCtx, as, ss.device, r, func(resp *wire.Response, err error) {
		ss.answer(id, kind, start, resp, err)
		<-ss.inflight
		ss.handlers.Done()
	})
}

func (ss *session) answer(id uint64, kind string, start time.Time, r *wire.Response, err error) {
	if k, ok := ss.srv.kinds[kind]; ok {
		k.Latency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		ss.reject(id, ss.srv.wireError(ss.log.With("conn", ss.id), kind, err))
		return
	}
	if r == nil {
		return
	}
	_ = ss.conn.SendResponse(id, r)
}

// subscribe registers the authenticated device for pushes.
func (ss *session) subscribe() error {
	unsub, err := ss.srv.cfg.Bus.Subscribe(ss.device, func(m bus.Message) {
		if m.Disconnect {
			ss.conn.Close(transport.StatusPolicyViolation, "device revoked or account deleted")
			return
		}
		if ss.conn.SendEncoded(m.Frame) == nil {
			ss.srv.metrics.Pushed.Inc()
		}
	})
	if err != nil {
		return err
	}
	ss.unsub = unsub
	ss.srv.metrics.Authenticated.Inc()
	return nil
}

// newPowChallenge issues a fresh single-use registration challenge.
func (ss *session) newPowChallenge() (pow.Challenge, error) {
	c, err := pow.NewChallenge(ss.srv.cfg.Rand)
	if err != nil {
		return c, err
	}
	ss.powChal = &issued{value: c[:], at: ss.srv.cfg.Now()}
	return c, nil
}
