package client

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// refusedError is a connection the server refused before the WebSocket
// upgrade (over a connection or rate limit), with the wait it asked for.
type refusedError struct {
	error
	wait time.Duration
}

func (e *refusedError) Unwrap() error { return e.error }

// retryAfter is the wait a refusal of the server asked for, or 0.
func retryAfter(err error) time.Duration {
	var re *refusedError
	if errors.As(err, &re) {
		return re.wait
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return time.Duration(we.GetRetryAfterMs()) * time.Millisecond
	}
	return 0
}

// reconnectWait is how long Run waits before the next attempt: the
// jittered backoff, but never less than the server asked for.
func reconnectWait(backoff time.Duration, err error) time.Duration {
	return max(backoff/2+time.Duration(rand.Int64N(int64(backoff/2)+1)), retryAfter(err))
}

// dialServer connects and says hello.
func dialServer(ctx context.Context, wsURL string) (*wireclient.Client, *wire.HelloResponse, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := wireclient.Dial(dctx, wsURL, nil)
	if err != nil {
		wait := retryAfter(err)
		err = fmt.Errorf("%w: %v", ErrOffline, err)
		if wait > 0 {
			return nil, nil, &refusedError{error: err, wait: wait}
		}
		return nil, nil, err
	}
	hello, err := conn.Hello(dctx)
	if err != nil {
		conn.CloseNow()
		if wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
			// The connection failed before the server answered: as
			// unreachable as a refused dial, and as worth retrying.
			return nil, nil, fmt.Errorf("%w: failed to greet server: %v", ErrOffline, err)
		}
		return nil, nil, fmt.Errorf("failed to greet server: %w", err)
	}
	return conn, hello, nil
}

func (c *Client) authenticate(ctx context.Context, conn *wireclient.Client) error {
	if err := authenticate(ctx, conn, c.account(), c.id.Device, c.devKey); err != nil {
		return fmt.Errorf("failed to authenticate: %w", err)
	}
	return nil
}

// authAttempts bounds the challenges asked for on one connection.
const authAttempts = 3

// authenticate authenticates conn as the device. The server keeps one
// single-use challenge per connection, so a challenge request the network
// delivered twice leaves the answer to the first one stale (AUTH_FAILED):
// ask for a fresh challenge a few times before giving up.
func authenticate(ctx context.Context, conn *wireclient.Client, account identity.AccountID, dev identity.DeviceID, key crypto.Signer) error {
	var err error
	for range authAttempts {
		if err = conn.Authenticate(ctx, account, dev, key); wireCode(err) != wire.ErrorCode_AUTH_FAILED {
			return err
		}
	}
	return err
}

// connect returns the live connection, dialling and authenticating one if
// there is none. Pushed events only wake the sync loop: their content is
// fetched again, in order, by Fetch.
func (c *Client) connect(ctx context.Context) (*wireclient.Client, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	if c.conn != nil {
		select {
		case <-c.conn.Done():
			c.conn = nil
		default:
			return c.conn, nil
		}
	}
	conn, hello, err := dialServer(ctx, c.id.ServerURL)
	if err != nil {
		return nil, err
	}
	if err := c.authenticate(ctx, conn); err != nil {
		conn.CloseNow()
		if wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED && ctx.Err() == nil {
			// No answer from the server: the connection broke under it.
			return nil, fmt.Errorf("%w: %v", ErrOffline, err)
		}
		return nil, err
	}
	c.serverName = hello.GetServerName()
	c.conn = conn
	c.fresh.Store(true)
	go func() {
		for ev := range conn.Events() {
			if d := ev.GetDelivery(); d != nil && d.GetKind() == wire.MessageKind_MESSAGE_KIND_COMMIT {
				c.keepPushedCommit(d)
			}
			c.wake()
		}
		c.wake()
	}()
	return conn, nil
}

// dropConnection closes the current connection abruptly (tests simulate
// network loss with it).
func (c *Client) dropConnection() {
	c.connMu.Lock()
	conn := c.conn
	c.conn = nil
	c.connMu.Unlock()
	if conn != nil {
		conn.CloseNow()
	}
}

// dropIf closes conn if it is still the current connection.
func (c *Client) dropIf(conn *wireclient.Client) {
	c.connMu.Lock()
	if c.conn != conn {
		c.connMu.Unlock()
		return
	}
	c.conn = nil
	c.connMu.Unlock()
	conn.CloseNow()
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) setState(s ConnState) {
	c.connMu.Lock()
	changed := c.state != s
	c.state = s
	c.connMu.Unlock()
	if changed {
		q, _ := c.queued(context.Background())
		c.emit(Event{Kind: EventConnection, State: s, Queued: q})
	}
}

// State returns the connection state.
func (c *Client) State() ConnState {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.state
}

// Sync connects if needed, fetches and stores everything pending, runs
// follow-up work (KeyPackage refill, membership repairs) and sends the
// outbox, then uploads this device's new history to the account's archive
// ([Client.ArchivePending]; a failure there is logged, not returned).
// One-shot front ends call it; [Client.Run] does it continuously.
func (c *Client) Sync(ctx context.Context) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	if err := c.syncConn(ctx, conn); err != nil {
		return err
	}
	c.archiveAfterSync(ctx)
	return nil
}

func (c *Client) syncConn(ctx context.Context, conn *wireclient.Client) error {
	c.mu.Lock()
	err := c.fetchAll(ctx, conn)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.runTasks(ctx, conn); err != nil {
		return err
	}
	if _, err := c.flushOutbox(ctx, conn); err != nil {
		return err
	}
	return c.expire(ctx)
}

// Run keeps the client online until ctx ends or the client is closed:
// connect, catch up, send, and on connection loss reconnect with
// exponential backoff (with jitter, capped by Options.MaxBackoff). It
// returns ctx.Err() or ErrClosed.
func (c *Client) Run(ctx context.Context) error {
	go c.runHistory(ctx)
	backoff := 100 * time.Millisecond
	first := true
	defer c.setState(Offline)
	for {
		if first {
			c.setState(Connecting)
		}
		conn, err := c.connect(ctx)
		if err == nil {
			c.setState(Online)
			first = false
			backoff = 100 * time.Millisecond
			err = c.runConn(ctx, conn)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return ErrClosed
		default:
		}
		if err != nil {
			c.log.Info("connection lost, retrying", "err", err, "backoff", backoff)
		}
		c.dropConnection()
		if !first {
			c.setState(Reconnecting)
		}
		if !c.sleep(ctx, reconnectWait(backoff, err)) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// runConn syncs on every wake-up until the connection ends.
func (c *Client) runConn(ctx context.Context, conn *wireclient.Client) error {
	c.wake()
	for {
		timer := time.NewTimer(c.nextTimer(ctx))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-c.closed:
			timer.Stop()
			return ErrClosed
		case <-conn.Done():
			timer.Stop()
			return conn.Err()
		case <-c.kick:
		case <-timer.C:
		}
		timer.Stop()
		if err := c.syncConn(ctx, conn); err != nil {
			if isConnErr(conn, err) {
				return err
			}
			c.log.Warn("sync failed", "err", err)
		}
	}
}

// nextTimer says when to wake up without a push: the next outbox retry or
// message expiry, at most a minute away.
func (c *Client) nextTimer(ctx context.Context) time.Duration {
	d := time.Minute
	if t, ok, err := c.st.NextOutboxAttempt(ctx); err == nil && ok {
		d = min(d, max(t.Sub(c.now()), 10*time.Millisecond))
	}
	if t, ok, err := c.st.NextExpiry(ctx); err == nil && ok {
		d = min(d, max(t.Sub(c.now()), 10*time.Millisecond))
	}
	return d
}

func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.closed:
		return false
	}
}

// isConnErr reports whether err means the connection is gone (as opposed
// to a protocol error answered by the server).
func isConnErr(conn *wireclient.Client, err error) bool {
	var we *wire.Error
	if errors.As(err, &we) {
		return false
	}
	if conn != nil {
		select {
		case <-conn.Done():
			return true
		default:
		}
	}
	return errors.Is(err, wireclient.ErrClosed) || errors.Is(err, ErrOffline) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// wireCode returns the protocol error code of err, if it is one.
func wireCode(err error) wire.ErrorCode {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.GetCode()
	}
	return wire.ErrorCode_ERROR_CODE_UNSPECIFIED
}

func (c *Client) claimUsername(ctx context.Context, conn *wireclient.Client, name string) error {
	claim, err := identity.IssueUsernameClaim(c.id.AccountKey, name, c.host, c.now())
	if err != nil {
		return fmt.Errorf("failed to make username claim: %w", err)
	}
	r, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: claim.Marshal()}}})
	if err != nil {
		return fmt.Errorf("failed to claim username: %w", err)
	}
	c.id.Username = r.GetClaimUsername().GetUsername()
	c.id.Address = c.id.Username + "@" + c.host
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutIdentity(c.id) })
}

// reachable connects if there is no live connection, and returns the error
// (ErrOffline when the server cannot be reached) at once: an operation the
// user waits for says the server is unreachable rather than retry, while
// withConn retries what breaks later.
func (c *Client) reachable(ctx context.Context) error {
	_, err := c.connect(ctx)
	return err
}

// maxOpAttempts bounds how often in a row an operation finds the server
// unreachable before it returns the error (ErrOffline).
const maxOpAttempts = 8

// maxOpRetryTime bounds how long an operation keeps retrying over new
// connections. While the server answers, an operation is retried however
// often its connection breaks under it (each try stores what it got
// done): on a network that drops connections more often than one try
// lasts, a count of breaks would fail it while the server is there.
const maxOpRetryTime = 30 * time.Second

// attempt is the outcome of one try of an operation (tryOn).
type attempt int

const (
	// attemptFinal: fn succeeded, or failed for good (the server's
	// answer, ctx ending).
	attemptFinal attempt = iota
	// attemptUnreachable: no connection to the server could be made.
	attemptUnreachable
	// attemptBroken: the connection broke under fn.
	attemptBroken
)

// withConn runs fn with a live connection, reconnecting and retrying when
// the connection fails under it (fn must be safe to repeat). It gives up
// after maxOpAttempts tries in a row find the server unreachable, or after
// maxOpRetryTime.
func (c *Client) withConn(ctx context.Context, fn func(conn *wireclient.Client) error) error {
	backoff := 50 * time.Millisecond
	start := time.Now()
	unreachable := 0
	for {
		out, err := c.tryOn(ctx, fn)
		switch out {
		case attemptFinal:
			return err
		case attemptUnreachable:
			if unreachable++; unreachable >= maxOpAttempts {
				return err
			}
		case attemptBroken:
			unreachable = 0
		}
		if time.Since(start) >= maxOpRetryTime {
			return err
		}
		wait := max(backoff, retryAfter(err))
		if wait > maxOpRetryWait {
			// The server refused us for longer than an operation
			// should block: say so rather than hang.
			return err
		}
		if !c.sleep(ctx, wait) {
			return err
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// tryOn runs fn once on a live connection and says whether its failure is
// worth another try on a new connection: the server was unreachable, or
// the connection broke under fn. The server's answers and ctx ending are
// final. fn must be safe to repeat.
func (c *Client) tryOn(ctx context.Context, fn func(conn *wireclient.Client) error) (attempt, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		if errors.Is(err, ErrOffline) || isConnErr(nil, err) {
			return attemptUnreachable, err
		}
		return attemptFinal, err
	}
	if err = fn(conn); err == nil {
		return attemptFinal, nil
	}
	if wireCode(err) != wire.ErrorCode_ERROR_CODE_UNSPECIFIED || ctx.Err() != nil {
		return attemptFinal, err
	}
	if !isConnErr(conn, err) {
		// A failed write can precede the reader noticing the connection
		// is gone: give it a moment.
		select {
		case <-conn.Done():
		case <-time.After(100 * time.Millisecond):
		}
		if !isConnErr(conn, err) {
			return attemptFinal, err
		}
	}
	c.dropIf(conn)
	return attemptBroken, err
}

// maxOpRetryWait is the longest a refused one-off operation waits for the
// server's Retry-After before it returns the refusal.
const maxOpRetryWait = 5 * time.Second
