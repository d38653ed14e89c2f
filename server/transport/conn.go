// Package transport is the server side of one Parley WebSocket connection:
// reading length-prefixed frame batches and writing queued frames in
// batches, with a bounded send queue.
//
// A [Conn] has one reader (the caller of [Conn.ReadMessage]) and at most one
// writer goroutine, which runs only while frames are queued, so an idle
// connection costs one goroutine. Frames queued while the writer is busy
// are packed into one WebSocket message (up to Options.BatchBytes), so a
// burst of pushes costs one write per batch rather than one per frame.
// When more than Options.MaxQueueBytes wait, the peer is a slow consumer:
// the connection is closed and the queue dropped (everything in it is in
// the store; the device catches up when it reconnects).
package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/wire"
)

var (
	// ErrSlowConsumer is returned by Send when the queue limit was exceeded;
	// the connection is being closed.
	ErrSlowConsumer = errors.New("transport: slow consumer")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("transport: connection closed")
)

// Options configure a Conn.
type Options struct {
	// MaxQueueBytes bounds the bytes waiting to be written (default 4 MiB).
	MaxQueueBytes int
	// BatchBytes is the most bytes packed into one WebSocket message
	// (default 64 KiB; a single larger frame is sent alone).
	BatchBytes int
	// WriteTimeout bounds one WebSocket write (default 10 s).
	WriteTimeout time.Duration
	// OnQueue, if set, is told every change of the queued byte count (for
	// a metrics gauge). It must not block.
	OnQueue func(delta int)
	// OnSlowConsumer, if set, is called once when the queue overflows.
	OnSlowConsumer func()
}

func (o Options) withDefaults() Options {
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = 4 << 20
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 64 << 10
	}
	if o.BatchBytes > wire.MaxMessageSize {
		o.BatchBytes = wire.MaxMessageSize
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.OnQueue == nil {
		o.OnQueue = func(int) {}
	}
	if o.OnSlowConsumer == nil {
		o.OnSlowConsumer = func() {}
	}
	return o
}

// Conn is one WebSocket connection. Send and Close are safe for concurrent
// use; ReadMessage must be called from one goroutine.
type Conn struct {
	ws   *websocket.Conn
	opts Options

	mu       sync.Mutex
	batches  [][]byte // pending WebSocket messages, each a run of frames
	queued   int      // bytes in batches
	writing  bool     // a writer goroutine is running
	closing  bool     // Close called: no more frames accepted
	code     websocket.StatusCode
	reason   string
	finished bool          // the WebSocket has been closed
	done     chan struct{} // closed when the WebSocket is closed
}

// New wraps an accepted WebSocket.
func New(ws *websocket.Conn, opts Options) *Conn {
	opts = opts.withDefaults()
	ws.SetReadLimit(wire.MaxMessageSize)
	return &Conn{ws: ws, opts: opts, done: make(chan struct{})}
}

// Done is closed once the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooled is the largest buffer returned to the pool, so one huge frame
// does not pin memory.
const maxPooled = 256 << 10

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > maxPooled {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// Send encodes f and queues it.
func (c *Conn) Send(f *wire.Frame) error {
	scratch := getBuf()
	defer func() { putBuf(scratch) }()
	var err error
	scratch, err = proto.MarshalOptions{}.MarshalAppend(scratch, f)
	if err != nil {
		return fmt.Errorf("failed to encode frame: %w", err)
	}
	return c.SendEncoded(scratch)
}

// SendEncoded queues one encoded frame (without its length prefix). The
// bytes are copied; the caller may reuse them.
func (c *Conn) SendEncoded(frame []byte) error {
	if len(frame) > wire.MaxFrameSize {
		return fmt.Errorf("failed to queue frame: %w", wire.ErrTooLarge)
	}
	size := binary.MaxVarintLen64 + len(frame)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued+size > c.opts.MaxQueueBytes {
		c.closing = true
		c.mu.Unlock()
		c.opts.OnSlowConsumer()
		c.abort()
		return ErrSlowConsumer
	}
	n := len(c.batches)
	if n == 0 || len(c.batches[n-1])+size > c.opts.BatchBytes {
		c.batches = append(c.batches, getBuf())
		n++
	}
	before := len(c.batches[n-1])
	b := binary.AppendUvarint(c.batches[n-1], uint64(len(frame)))
	c.batches[n-1] = append(b, frame...)
	added := len(c.batches[n-1]) - before
	c.queued += added
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	c.opts.OnQueue(added)
	if start {
		go c.writeLoop()
	}
	return nil
}

// writeLoop writes queued batches until the queue is empty, then exits.
// If Close was called it closes the WebSocket once the queue is drained.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		batches := c.batches
		c.batches = nil
		queued := c.queued
		c.queued = 0
		if len(batches) == 0 {
			c.writing = false
			closing, code, reason := c.closing, c.code, c.reason
			c.mu.Unlock()
			if closing && code != 0 {
				c.finish(code, reason)
			}
			return
		}
		c.mu.Unlock()
		var werr error
		for _, b := range batches {
			if werr == nil {
				ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
				werr = c.ws.Write(ctx, websocket.MessageBinary, b)
				cancel()
			}
			putBuf(b)
		}
		c.opts.OnQueue(-queued)
		if werr != nil {
			c.mu.Lock()
			c.closing = true
			c.writing = false
			dropped := c.queued
			for _, b := range c.batches {
				putBuf(b)
			}
			c.batches, c.queued = nil, 0
			c.mu.Unlock()
			c.opts.OnQueue(-dropped)
			c.abort()
			return
		}
	}
}

// Close stops accepting frames, writes what is queued, then closes the
// WebSocket with code and reason. It does not wait; see Done.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.code, c.reason = code, reason
	writing := c.writing
	c.mu.Unlock()
	if !writing {
		go c.finish(code, reason)
	}
}

// CloseNow closes the WebSocket at once without a close handshake,
// dropping the queue.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.abort()
}

// abort closes the WebSocket at once, dropping the queue.
func (c *Conn) abort() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.mu.Unlock()
	_ = c.ws.CloseNow()
	close(c.done)
}

// finish runs the close handshake.
func (c *Conn) finish(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.mu.Unlock()
	_ = c.ws.Close(code, reason)
	close(c.done)
}

// ErrNotBinary is returned by ReadMessage for a text message.
var ErrNotBinary = errors.New("transport: text message on a binary protocol")

// ReadMessage waits for the next WebSocket message and reads it into a
// pooled buffer, taken only once the message has arrived so that an idle
// connection holds no read buffer. Give the result back with
// ReleaseBuffer once it is decoded.
func (c *Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	typ, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	buf := getBuf()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			putBuf(buf)
			return nil, err
		}
	}
	if typ != websocket.MessageBinary {
		putBuf(buf)
		return nil, ErrNotBinary
	}
	return buf, nil
}

// ReleaseBuffer returns a message from ReadMessage to the pool.
func ReleaseBuffer(b []byte) { putBuf(b) }
