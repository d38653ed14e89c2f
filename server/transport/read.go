package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/parley-im/parley/wire"
)

// ErrNotBinary is given to Handler.End for a text message.
var ErrNotBinary = errors.New("transport: text message on a binary protocol")

// Handler receives the messages of a Conn.
type Handler interface {
	// Message handles one complete binary WebSocket message. msg is only
	// valid during the call. Calls are sequential, never concurrent; the
	// connection reads nothing more until Message returns.
	Message(msg []byte)
	// End is called once, after the last Message call, when the
	// connection stops delivering messages. err says why: io.EOF (the peer
	// closed), ErrNotBinary, wire.ErrTooLarge, a ws.ProtocolError,
	// ErrStopped, ErrClosed, or a read error. End must not block.
	End(err error)
}

// forceReadGoroutine makes every connection read on a goroutine of its own,
// as on platforms without a poller (set by tests only).
var forceReadGoroutine = false

// maxReadsPerCycle bounds the reads of one readable event, so one busy
// connection does not hold a worker while others wait; the poller reports
// the connection again if more is pending.
const maxReadsPerCycle = 8

// readSide is a Conn's read state. buf, frag, fragmented and discard are
// touched only by the reader that holds running (or, in goroutine mode,
// by the read goroutine); the rest under rmu.
type readSide struct {
	buf        []byte // unparsed bytes from the socket; nil while none (pooled)
	frag       []byte // fragments of a message in progress (pooled)
	fragmented bool
	discard    bool          // after a protocol fault or the peer's close: drop input
	pause      time.Duration // set by PauseReading during Message

	rmu     sync.Mutex
	h       Handler
	running bool     // a reader is reading or delivering
	stopped bool     // no more messages are delivered
	stopErr error    // why
	ended   bool     // End was called
	closed  bool     // the socket is closed
	reg     *pollReg // poller registration; nil in goroutine mode
}

// Start begins reading and hands messages to h. It does not block.
func (c *Conn) Start(h Handler) {
	r := &c.read
	r.rmu.Lock()
	r.h = h
	if r.closed {
		r.rmu.Unlock()
		if r.requestStop(ErrClosed) {
			h.End(ErrClosed)
		}
		return
	}
	var reg *pollReg
	if !forceReadGoroutine {
		reg = register(c)
	}
	r.reg = reg
	if reg != nil {
		// Bytes may already be waiting (sent with the upgrade request):
		// read once before parking.
		r.running = true
	}
	r.rmu.Unlock()
	if reg == nil {
		go c.readLoop()
		return
	}
	dispatch(c)
}

// PauseReading stops reading for d once the current message is handled:
// a peer told to back off (rate limited) is not read, and so not answered,
// until then. It must be called from Handler.Message.
func (c *Conn) PauseReading(d time.Duration) {
	c.read.pause = max(c.read.pause, d)
}

// StopReading stops delivering messages; End is called with ErrStopped
// (once any Message call in progress returns). The socket stays open so a
// close handshake can finish.
func (c *Conn) StopReading() {
	if c.read.requestStop(ErrStopped) {
		c.read.h.End(ErrStopped)
	}
}

// requestStop marks the read side stopped and reports whether the caller
// must call End now (no reader is delivering and End was not called).
func (r *readSide) requestStop(err error) bool {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	if !r.stopped {
		r.stopped, r.stopErr = true, err
	}
	if r.running || r.ended || r.h == nil {
		return false
	}
	r.ended = true
	return true
}

// closeSocket closes the socket and ends reading (from abort).
func (r *readSide) closeSocket(c *Conn) {
	r.rmu.Lock()
	r.closed = true
	var reg *pollReg
	if !r.running && r.reg != nil {
		// Parked in a poller: nobody reads; release what it holds.
		reg, r.reg = r.reg, nil
		r.releaseBuffers()
	}
	r.rmu.Unlock()
	if reg != nil {
		reg.remove()
	}
	_ = c.nc.Close()
	if r.requestStop(ErrClosed) {
		r.h.End(ErrClosed)
	}
}

func (r *readSide) releaseBuffers() {
	putBuf(r.buf)
	putBuf(r.frag)
	r.buf, r.frag = nil, nil
}

// tryStart claims the read side for one cycle of a poller worker.
func (r *readSide) tryStart() bool {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	if r.running || r.closed || r.reg == nil {
		return false
	}
	r.running = true
	return true
}

// cycle reads what the socket holds and delivers complete messages; it
// runs on a poller worker, then parks the connection again.
func (c *Conn) cycle() {
	r := &c.read
	var fault error
	if len(r.buf) > 0 {
		// Bytes left by a pause, or sent along with the upgrade request.
		fault = c.consume()
	}
	for i := 0; i < maxReadsPerCycle && fault == nil && r.pause == 0; i++ {
		r.grow()
		n, err := r.reg.read(r.buf[len(r.buf):cap(r.buf)])
		if n > 0 {
			r.buf = r.buf[:len(r.buf)+n]
			fault = c.consume()
		}
		if errors.Is(err, errWouldBlock) {
			break
		}
		if fault == nil && (err != nil || n == 0) {
			fault = readError(err)
		}
	}
	if len(r.buf) == 0 {
		putBuf(r.buf)
		r.buf = nil
	}
	if fault != nil {
		r.requestStop(fault)
		c.abort()
	}
	r.rmu.Lock()
	r.running = false
	var end error
	if r.stopped && !r.ended {
		r.ended, end = true, r.stopErr
	}
	var remove *pollReg
	pause := r.pause
	r.pause = 0
	if r.closed {
		remove, r.reg = r.reg, nil
		r.releaseBuffers()
	} else if pause > 0 && !r.stopped {
		// Parked but not armed: nothing is read until the pause is over.
		time.AfterFunc(pause, func() {
			if r.tryStart() {
				dispatch(c)
			}
		})
	} else if err := r.reg.rearm(); err != nil {
		r.rmu.Unlock()
		c.abort()
		r.rmu.Lock()
	}
	h := r.h
	r.rmu.Unlock()
	if remove != nil {
		remove.remove()
	}
	if end != nil {
		h.End(end)
	}
}

// readLoop is the goroutine-per-connection reader (TLS, non-Linux).
func (c *Conn) readLoop() {
	r := &c.read
	var fault error
	fresh := len(r.buf) > 0 // bytes sent along with the upgrade request
	for fault == nil {
		n, err := 0, error(nil)
		if !fresh {
			r.grow()
			n, err = c.nc.Read(r.buf[len(r.buf):cap(r.buf)])
			r.buf = r.buf[:len(r.buf)+n]
		}
		if fresh || n > 0 {
			fresh = false
			r.rmu.Lock()
			r.running = true
			r.rmu.Unlock()
			fault = c.consume()
			r.rmu.Lock()
			r.running = false
			var end error
			if r.stopped && !r.ended {
				r.ended, end = true, r.stopErr
			}
			h := r.h
			r.rmu.Unlock()
			if end != nil {
				h.End(end)
			}
			if pause := r.pause; pause > 0 {
				r.pause = 0
				time.Sleep(pause)
				fresh = len(r.buf) > 0
			}
		}
		if fault == nil && err != nil {
			fault = readError(err)
		}
	}
	callEnd := r.requestStop(fault)
	c.abort()
	if callEnd {
		r.h.End(fault)
	}
	r.releaseBuffers()
}

func readError(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// grow makes room to read into buf.
func (r *readSide) grow() {
	if r.buf == nil {
		r.buf = getBuf()
	}
	if len(r.buf) == cap(r.buf) {
		// Grow as bytes arrive, not as a peer's header announces.
		r.buf = append(r.buf, 0)[:len(r.buf)]
	}
}

// stoppedNow reports whether messages are no longer delivered.
func (r *readSide) stoppedNow() bool {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.stopped
}

// consume handles the complete frames in buf and keeps the rest. A
// non-nil result ends the connection at once (the socket is to be
// closed); protocol faults that close with a handshake return nil and
// set discard.
func (c *Conn) consume() error {
	r := &c.read
	off := 0
	defer func() {
		rest := copy(r.buf, r.buf[off:])
		r.buf = r.buf[:rest]
	}()
	for !r.discard && r.pause == 0 {
		h, hlen, ok := parseHeader(r.buf[off:])
		if !ok {
			return nil
		}
		state := ws.StateServerSide
		if r.fragmented {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.fault(StatusProtocolError, err.Error(), err)
			return nil
		}
		if h.Length > int64(wire.MaxMessageSize-len(r.frag)) {
			c.fault(StatusMessageTooBig, "message too big", fmt.Errorf("%w: WebSocket message over %d bytes", wire.ErrTooLarge, wire.MaxMessageSize))
			return nil
		}
		end := off + hlen + int(h.Length)
		if end > len(r.buf) {
			if need := end - off; need > cap(r.buf) {
				grown := make([]byte, len(r.buf)-off, max(need, 2*cap(r.buf)))
				copy(grown, r.buf[off:])
				putBuf(r.buf)
				r.buf, off = grown, 0
			}
			return nil
		}
		payload := r.buf[off+hlen : end]
		off = end
		ws.Cipher(payload, h.Mask, 0)
		c.frame(h, payload)
	}
	if r.discard {
		off = len(r.buf)
	}
	return nil
}

// frame handles one complete, unmasked frame.
func (c *Conn) frame(h ws.Header, payload []byte) {
	r := &c.read
	switch h.OpCode {
	case ws.OpPing:
		c.sendControl(ws.OpPong, payload)
	case ws.OpPong:
	case ws.OpClose:
		code := StatusNormalClosure
		if len(payload) >= 2 {
			code = StatusCode(binary.BigEndian.Uint16(payload))
			if !validCloseCode(code) || !utf8.Valid(payload[2:]) {
				code = StatusProtocolError
			}
		} else if len(payload) == 1 {
			code = StatusProtocolError
		}
		r.discard = true
		r.requestStop(io.EOF)
		c.peerClosed(code)
	case ws.OpText:
		r.discard = true
		r.requestStop(ErrNotBinary)
	case ws.OpBinary, ws.OpContinuation:
		if !h.Fin || r.fragmented {
			r.frag = append(r.frag, payload...)
			r.fragmented = !h.Fin
			if !h.Fin {
				return
			}
			payload = r.frag
		}
		if !r.stoppedNow() {
			r.h.Message(payload)
		}
		if r.frag != nil {
			putBuf(r.frag)
			r.frag = nil
		}
	}
}

// fault ends the connection for a protocol fault: no more messages, a close
// frame with code, input discarded until the socket closes.
func (c *Conn) fault(code StatusCode, reason string, err error) {
	c.read.discard = true
	c.read.requestStop(err)
	c.Close(code, reason)
}

// validCloseCode reports whether a peer may send code (RFC 6455, 7.4).
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// parseHeader parses a frame header at the start of b; ok is false if b
// does not hold all of it yet.
func parseHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		v := binary.BigEndian.Uint64(b[2:])
		// The top bit must be zero; larger values are refused by the
		// message size check anyway.
		h.Length = int64(v & (1<<63 - 1))
		if v>>63 != 0 {
			h.Length = 1<<63 - 1
		}
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true
}
