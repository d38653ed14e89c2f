// Package wireclient is a small client for the Parley device protocol: it
// dials /v1/ws, correlates requests with responses, and hands server pushes
// to the caller. It speaks the protocol and nothing more (no MLS, no local
// storage); the SDK, the test harness and the load generator build on it.
//
//	c, err := wireclient.Dial(ctx, "ws://127.0.0.1:8080/v1/ws", nil)
//	_, err = c.Hello(ctx)
//	err = c.Authenticate(ctx, account, deviceID, deviceKey)
//	resp, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Fetch{Fetch: &wire.Fetch{}}})
//
// Protocol errors are returned as *wire.Error (match with errors.As).
package wireclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/parley-im/parley/wire"
)

// ErrClosed is returned for requests on a closed connection.
var ErrClosed = errors.New("wireclient: connection closed")

// Options configure a Client.
type Options struct {
	// EventBuffer is the capacity of the Events channel (default 1024).
	// When it is full the client stops reading, and a server eventually
	// disconnects it as a slow consumer.
	EventBuffer int
	// HTTPClient is used to dial (default http.DefaultClient).
	HTTPClient *http.Client
	// Header is sent with the WebSocket handshake.
	Header http.Header
}

// Client is one connection to a Parley server. Its methods are safe for
// concurrent use.
type Client struct {
	ws     *websocket.Conn
	events chan *wire.Event
	errs   chan *wire.Error

	writeMu sync.Mutex // held while writing to the WebSocket

	outMu    sync.Mutex
	out      [][]byte // messages queued while another caller writes, each up to maxBatch
	flushing bool

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *wire.Frame
	err     error // set once the reader stops
	done    chan struct{}

	// closing is closed by Close and CloseNow, so that a reader blocked
	// on a full Events channel nobody reads any more gives up.
	closing   chan struct{}
	closeOnce sync.Once
}

// Dial connects to a server's /v1/ws URL (ws:// or wss://).
func Dial(ctx context.Context, url string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 1024
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: opts.HTTPClient, HTTPHeader: opts.Header, CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if werr := refusal(resp); werr != nil {
			return nil, fmt.Errorf("failed to dial %s: %w", url, werr)
		}
		return nil, fmt.Errorf("failed to dial %s: %w", url, err)
	}
	ws.SetReadLimit(wire.MaxMessageSize)
	c := &Client{
		ws:      ws,
		events:  make(chan *wire.Event, opts.EventBuffer),
		errs:    make(chan *wire.Error, 16),
		pending: make(map[uint64]chan *wire.Frame),
		done:    make(chan struct{}),
		closing: make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// refusal is the protocol error of an upgrade the server refused with an
// HTTP error (see wire.ErrorHeader), or nil if resp is not one.
func refusal(resp *http.Response) *wire.Error {
	if resp == nil {
		return nil
	}
	code, ok := wire.ErrorCode_value[resp.Header.Get(wire.ErrorHeader)]
	if !ok || code == 0 {
		return nil
	}
	var msg []byte
	if resp.Body != nil {
		msg, _ = io.ReadAll(io.LimitReader(resp.Body, wire.MaxErrorMessage))
	}
	e := wire.NewError(wire.ErrorCode(code), "%s", strings.TrimSpace(string(msg)))
	if s, err := strconv.ParseUint(resp.Header.Get("Retry-After"), 10, 32); err == nil {
		e.RetryAfterMs = uint32(min(s*1000, 1<<31))
	}
	return e
}

// Events delivers server pushes. It is closed when the connection ends.
func (c *Client) Events() <-chan *wire.Event { return c.events }

// ConnErrors delivers errors the server sent with frame id 0 (about a frame
// it could not attribute to a request). Extra ones are dropped if the
// caller does not read them.
func (c *Client) ConnErrors() <-chan *wire.Error { return c.errs }

// Done is closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		if err == nil {
			err = ErrClosed
		}
		c.err = err
		closed := make(map[chan *wire.Frame]bool)
		for id, ch := range c.pending {
			if !closed[ch] { // a Pipeline's channel serves many ids
				closed[ch] = true
				close(ch)
			}
			delete(c.pending, id)
		}
		c.mu.Unlock()
		close(c.events)
		close(c.done)
	}()
	for {
		var msg []byte
		_, msg, err = c.ws.Read(context.Background())
		if err != nil {
			return
		}
		err = wire.DecodeMessage(msg, func(f *wire.Frame, ferr error) error {
			if ferr != nil {
				return ferr
			}
			switch b := f.GetBody().(type) {
			case *wire.Frame_Event:
				select {
				case c.events <- b.Event:
				case <-c.closing:
					return ErrClosed
				}
			case *wire.Frame_Error:
				if f.GetId() == 0 {
					select {
					case c.errs <- b.Error:
					default:
					}
					return nil
				}
				c.resolve(f)
			case *wire.Frame_Response:
				c.resolve(f)
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrClosed) { // not the caller closing
				err = fmt.Errorf("failed to decode server message: %w", err)
			}
			_ = c.ws.CloseNow()
			return
		}
	}
}

func (c *Client) resolve(f *wire.Frame) {
	c.mu.Lock()
	ch := c.pending[f.GetId()]
	delete(c.pending, f.GetId())
	c.mu.Unlock()
	if ch != nil {
		ch <- f
	}
}

// WriteMessage sends one raw WebSocket binary message (tests use it for
// hostile input).
func (c *Client) WriteMessage(ctx context.Context, msg []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return fmt.Errorf("failed to write: %w", err)
	}
	return nil
}

// maxBatch bounds the frames coalesced into one outgoing message.
const maxBatch = 256 << 10

// Send queues frames and writes them without waiting for answers. Frames
// sent concurrently are coalesced: the caller that finds no write in
// progress writes everything queued, in as few WebSocket messages as
// possible. A write error closes the connection; callers waiting for
// answers then see it.
func (c *Client) Send(ctx context.Context, frames ...*wire.Frame) error {
	c.outMu.Lock()
	for _, f := range frames {
		n := len(c.out)
		if n == 0 || len(c.out[n-1]) >= maxBatch {
			c.out = append(c.out, nil)
			n++
		}
		var err error
		if c.out[n-1], err = wire.AppendFrame(c.out[n-1], f); err != nil {
			c.outMu.Unlock()
			return err
		}
	}
	if c.flushing {
		c.outMu.Unlock()
		return nil
	}
	c.flushing = true
	for len(c.out) > 0 {
		msgs := c.out
		c.out = nil
		c.outMu.Unlock()
		var err error
		for _, m := range msgs {
			if err = c.WriteMessage(ctx, m); err != nil {
				break
			}
		}
		c.outMu.Lock()
		if err != nil {
			c.out, c.flushing = nil, false
			c.outMu.Unlock()
			_ = c.ws.CloseNow()
			return err
		}
	}
	c.flushing = false
	c.outMu.Unlock()
	return nil
}

// register reserves a request id and its answer channel.
func (c *Client) register() (uint64, chan *wire.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	c.next++
	ch := make(chan *wire.Frame, 1)
	c.pending[c.next] = ch
	return c.next, ch, nil
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// roundTrip sends a frame with a fresh id and waits for its answer.
func (c *Client) roundTrip(ctx context.Context, f *wire.Frame) (*wire.Response, error) {
	id, ch, err := c.register()
	if err != nil {
		return nil, err
	}
	f.Id = id
	if err := c.Send(ctx, f); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return nil, c.Err()
		}
		if e := ans.GetError(); e != nil {
			return nil, e
		}
		return ans.GetResponse(), nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

// Pipeline sends requests without waiting for their answers: each gets a
// fresh id (set in its frame) and is written in one WebSocket message
// with the others, and each answer (a response or an error frame) arrives
// on answers in the order the server sends it, correlated by Frame.Id.
// answers must have room for every answer outstanding on it: the reader
// blocks until it has. When the connection ends, answers is closed (the
// same channel may serve many Pipeline calls; it is closed once).
//
// A sender that keeps a window of requests in flight, sending the next ones
// as answers come in, so writes many requests per system call; the
// server reads them in one go too.
func (c *Client) Pipeline(ctx context.Context, answers chan *wire.Frame, frames ...*wire.Frame) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	for _, f := range frames {
		c.next++
		f.Id = c.next
		c.pending[f.Id] = answers
	}
	c.mu.Unlock()
	if err := c.Send(ctx, frames...); err != nil {
		for _, f := range frames {
			c.forget(f.Id)
		}
		return err
	}
	return nil
}

// Do sends a request and waits for its response. A protocol error is
// returned as *wire.Error.
func (c *Client) Do(ctx context.Context, req *wire.Request) (*wire.Response, error) {
	return c.roundTrip(ctx, &wire.Frame{Body: &wire.Frame_Request{Request: req}})
}

// Ack acknowledges deliveries. With wait it waits until the server has
// made the acks durable; without, it only writes the frame.
func (c *Client) Ack(ctx context.Context, refs []*wire.AckRef, wait bool) error {
	f := &wire.Frame{Body: &wire.Frame_Ack{Ack: &wire.Ack{Refs: refs}}}
	if !wait {
		return c.Send(ctx, f)
	}
	_, err := c.roundTrip(ctx, f)
	return err
}

// Close closes the connection. Events not yet read may be dropped.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// CloseNow drops the connection without a close handshake. Events not yet
// read may be dropped.
func (c *Client) CloseNow() {
	c.closeOnce.Do(func() { close(c.closing) })
	_ = c.ws.CloseNow()
	<-c.done
}

// RefOf returns the ack reference of a delivery.
func RefOf(d *wire.Delivery) *wire.AckRef {
	if len(d.GetGroupId()) > 0 {
		return &wire.AckRef{GroupId: d.GetGroupId(), Seq: d.GetSeq()}
	}
	return &wire.AckRef{MailboxSeq: d.GetMailboxSeq()}
}

// WriteText sends a text WebSocket message (tests use it for hostile input).
func (c *Client) WriteText(ctx context.Context, s string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.ws.Write(ctx, websocket.MessageText, []byte(s))
}

// DoRaw writes a raw message that carries a frame with the given id and
// waits for the answer to that id. The id must not collide with ids the
// client chooses itself (they count up from 1); tests use large ids.
func (c *Client) DoRaw(ctx context.Context, id uint64, msg []byte) (*wire.Response, error) {
	ch := make(chan *wire.Frame, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.WriteMessage(ctx, msg); err != nil {
		c.forget(id)
		return nil, err
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return nil, c.Err()
		}
		if e := ans.GetError(); e != nil {
			return nil, e
		}
		return ans.GetResponse(), nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}
