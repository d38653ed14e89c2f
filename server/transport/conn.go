// Package transport is the server side of one Parley WebSocket connection:
// reading WebSocket messages (each a batch of length-prefixed frames) and
// writing queued frames in batches, with a bounded send queue.
//
// An idle [Conn] holds no goroutine and no buffer. On Linux, plain TCP
// connections are parked in an epoll poller; when one becomes readable a
// worker from a bounded pool reads what the socket holds, hands every
// complete message to the connection's [Handler], and parks the connection
// again. Elsewhere, and for TLS, a goroutine per connection reads instead.
// Read buffers come from a pool and go back to it once no partial frame
// is left.
//
// The writer goroutine runs only while frames are queued. Frames queued
// while the writer is busy are packed into one WebSocket message (up to
// Options.BatchBytes), so a burst of pushes costs one write per batch rather
// than one per frame. When more than Options.MaxQueueBytes wait, the peer is
// a slow consumer: the queue is dropped (everything in it is in the store;
// the device catches up when it reconnects) and the connection is closed
// with status 1008 (policy violation), the close frame written within
// Options.CloseTimeout or not at all.
//
// Lock order: Conn.rmu (read side) is never held while Conn.mu (send queue)
// is taken, nor the other way round; the poller's lock nests inside rmu.
package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/wire"
)

var (
	// ErrSlowConsumer is returned by Send when the queue limit was exceeded;
	// the connection is being closed.
	ErrSlowConsumer = errors.New("transport: slow consumer")
	// ErrClosed is returned by Send after Close, and given to Handler.End
	// when the connection was closed by this side.
	ErrClosed = errors.New("transport: connection closed")
	// ErrStopped is given to Handler.End after StopReading.
	ErrStopped = errors.New("transport: reading stopped")
)

// StatusCode is a WebSocket close status code (RFC 6455, section 7.4).
type StatusCode uint16

// Close status codes used by the server.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusTryAgainLater   StatusCode = 1013
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
	// CloseTimeout bounds the wait for the peer's answer to a close frame
	// (default 5 s).
	CloseTimeout time.Duration
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
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
	if o.OnQueue == nil {
		o.OnQueue = func(int) {}
	}
	if o.OnSlowConsumer == nil {
		o.OnSlowConsumer = func() {}
	}
	return o
}

// outMsg is one queued WebSocket message. b starts with headerRoom bytes
// reserved for the frame header, so header and payload go out in one write.
type outMsg struct {
	op ws.OpCode
	b  []byte
}

// headerRoom is the largest header of an unmasked server frame.
const headerRoom = 10

// Conn is one WebSocket connection. Send, Close, CloseNow and StopReading
// are safe for concurrent use.
type Conn struct {
	nc   net.Conn
	opts Options

	mu        sync.Mutex
	batches   []outMsg // pending WebSocket messages
	queued    int      // payload bytes in batches
	writing   bool     // a writer goroutine is running
	closing   bool     // Close called: no more frames accepted
	code      StatusCode
	reason    string
	closeSent bool          // our close frame is written
	peerClose bool          // the peer's close frame was read
	finished  bool          // the socket is closed
	done      chan struct{} // closed when the socket is closed

	read readSide
}

// New wraps a WebSocket connection whose handshake is complete. pending
// holds bytes already read from nc after the handshake (may be nil). The
// connection reads nothing until Start.
func New(nc net.Conn, pending []byte, opts Options) *Conn {
	c := &Conn{nc: nc, opts: opts.withDefaults(), done: make(chan struct{})}
	if len(pending) > 0 {
		c.read.buf = append(getBuf(), pending...)
	}
	return c
}

// Done is closed once the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooled is the largest buffer returned to the pool, so one huge frame
// does not pin memory.
const maxPooled = 256 << 10

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > maxPooled || cap(b) == 0 {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// Send encodes f and queues it.
func (c *Conn) Send(f *wire.Frame) error {
	scratch, err := proto.MarshalOptions{}.MarshalAppend(getBuf(), f)
	if err != nil {
		putBuf(scratch)
		return fmt.Errorf("failed to encode frame: %w", err)
	}
	err = c.SendEncoded(scratch)
	putBuf(scratch)
	return err
}

// SendResponse queues Frame{id, response: r}. Only r is marshalled; the
// frame around it is written as the tag, id and length protobuf would
// write, so answering allocates no wrapper.
func (c *Conn) SendResponse(id uint64, r *wire.Response) error {
	n := proto.Size(r)
	b := getBuf()
	if id != 0 {
		b = protowire.AppendTag(b, frameIDField, protowire.VarintType)
		b = protowire.AppendVarint(b, id)
	}
	b = protowire.AppendTag(b, frameResponseField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, r)
	if err != nil {
		putBuf(b)
		return fmt.Errorf("failed to encode response: %w", err)
	}
	err = c.SendEncoded(b)
	putBuf(b)
	return err
}

// Field numbers of Frame.id and Frame.response, read from the schema.
var (
	frameIDField       = (&wire.Frame{}).ProtoReflect().Descriptor().Fields().ByName("id").Number()
	frameResponseField = (&wire.Frame{}).ProtoReflect().Descriptor().Fields().ByName("response").Number()
)

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
		c.slowConsumer()
		return ErrSlowConsumer
	}
	n := len(c.batches)
	if n == 0 || c.batches[n-1].op != ws.OpBinary || len(c.batches[n-1].b)-headerRoom+size > c.opts.BatchBytes {
		c.batches = append(c.batches, outMsg{op: ws.OpBinary, b: append(getBuf(), make([]byte, headerRoom)...)})
		n++
	}
	last := &c.batches[n-1]
	before := len(last.b)
	last.b = binary.AppendUvarint(last.b, uint64(len(frame)))
	last.b = append(last.b, frame...)
	added := len(last.b) - before
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

// SlowConsumerReason is the reason of the close frame (status 1008) that
// ends a connection whose send queue overflowed.
const SlowConsumerReason = "slow consumer: send queue over its limit; reconnect and fetch"

// slowConsumer ends a connection whose queue overflowed; c.mu is held and
// is released. The queued messages are dropped (they are in the store), a
// write in flight may finish, then the close frame (1008) follows. All of
// it must be written within CloseTimeout from now: a peer that reads
// nothing gets no close frame, only a closed socket, and costs nothing
// longer than that.
func (c *Conn) slowConsumer() {
	c.closing = true
	c.code, c.reason = StatusPolicyViolation, SlowConsumerReason
	dropped := c.queued
	for _, m := range c.batches {
		putBuf(m.b)
	}
	c.batches, c.queued = nil, 0
	writing := c.writing
	c.mu.Unlock()
	c.opts.OnQueue(-dropped)
	c.opts.OnSlowConsumer()
	// Shortens the deadline of a write in flight; finish bounds the close
	// frame's own write the same way.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.CloseTimeout))
	if !writing {
		go c.finish(StatusPolicyViolation, SlowConsumerReason)
	}
}

// sendControl queues a control frame (pong) unless the connection closes.
func (c *Conn) sendControl(op ws.OpCode, payload []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.batches = append(c.batches, outMsg{op: op, b: append(append(getBuf(), make([]byte, headerRoom)...), payload...)})
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// writeFrame writes one frame whose payload follows headerRoom bytes of b.
func (c *Conn) writeFrame(op ws.OpCode, b []byte) error {
	return c.writeFrameWithin(op, b, c.opts.WriteTimeout)
}

// writeFrameWithin is writeFrame with a deadline timeout from now.
func (c *Conn) writeFrameWithin(op ws.OpCode, b []byte, timeout time.Duration) error {
	payload := len(b) - headerRoom
	h := ws.Header{Fin: true, OpCode: op, Length: int64(payload)}
	hs := ws.HeaderSize(h)
	start := headerRoom - hs
	if err := ws.WriteHeader(sliceWriter{b[start:headerRoom]}, h); err != nil {
		return err
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(b[start:])
	return err
}

// sliceWriter writes into a fixed slice (the reserved header room).
type sliceWriter struct{ b []byte }

func (w sliceWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.b) {
		return 0, errors.New("transport: header does not fit")
	}
	return copy(w.b, p), nil
}

// writeLoop writes queued batches until the queue is empty, then exits.
// If Close was called it closes the WebSocket once the queue is drained.
func (c *Conn) writeLoop() {
	for {
		// Let the goroutines that made this one runnable (handlers,
		// publishers) queue more frames first: one write then carries
		// several.
		runtime.Gosched()
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
		for _, m := range batches {
			if werr == nil {
				werr = c.writeFrame(m.op, m.b)
			}
			putBuf(m.b)
		}
		c.opts.OnQueue(-queued)
		if werr != nil {
			c.mu.Lock()
			c.closing = true
			c.writing = false
			dropped := c.queued
			for _, m := range c.batches {
				putBuf(m.b)
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
// WebSocket with code and reason: it sends a close frame and closes the
// socket once the peer answers (or after Options.CloseTimeout). It does
// not wait; see Done.
func (c *Conn) Close(code StatusCode, reason string) {
	if len(reason) > 123 {
		reason = reason[:123]
	}
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

// CloseNow closes the socket at once without a close handshake, dropping
// the queue.
func (c *Conn) CloseNow() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.abort()
}

// finish writes the close frame, then closes the socket when the peer has
// answered it or after CloseTimeout.
func (c *Conn) finish(code StatusCode, reason string) {
	c.mu.Lock()
	if c.finished || c.closeSent {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	b := append(getBuf(), make([]byte, headerRoom)...)
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = append(b, reason...)
	// The close frame's write is bounded by CloseTimeout, so a stuck peer
	// does not hold the connection for a whole WriteTimeout.
	err := c.writeFrameWithin(ws.OpClose, b, min(c.opts.WriteTimeout, c.opts.CloseTimeout))
	putBuf(b)
	c.mu.Lock()
	c.closeSent = true
	answered := c.peerClose
	c.mu.Unlock()
	if err != nil || answered {
		c.abort()
		return
	}
	// Half-close: the peer sees the end of our stream after the close
	// frame; the read side keeps reading until its close frame or EOF.
	if tcp, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tcp.CloseWrite()
	}
	time.AfterFunc(c.opts.CloseTimeout, c.abort)
}

// peerClosed records the peer's close frame: it is answered with code (if
// this side has not sent its own) and the socket is closed.
func (c *Conn) peerClosed(code StatusCode) {
	c.mu.Lock()
	c.peerClose = true
	sent := c.closeSent
	c.mu.Unlock()
	if sent {
		c.abort()
		return
	}
	c.Close(code, "")
}

// abort closes the socket at once, dropping the queue.
func (c *Conn) abort() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.mu.Unlock()
	c.read.closeSocket(c)
	close(c.done)
}
