// Package chaos is Parley's chaos harness: real `parley serve` processes
// killed with SIGKILL and restarted, many real SDK clients, and a loopback
// [Proxy] between them that delays WebSocket frames, duplicates them,
// reorders them within a connection and across connections, and cuts
// connections. [Run] checks afterwards that every message a client
// accepted for sending reached every member device exactly once, in the
// same order everywhere, with nothing undecryptable.
//
// The bounded run is part of `go test ./internal/chaos`; `parley bench
// chaos` runs the same harness from the binary. The long run (50 devices,
// 10,000 messages, 20 server kills) is one command:
//
//	parley bench chaos --devices 50 --messages 10000 --kills 20 --duration 5m
//
// or, through go test, PARLEY_CHAOS=long go test ./internal/chaos -run Long
// -timeout 2h -v. PARLEY_CHAOS_ACCOUNTS, PARLEY_CHAOS_MESSAGES,
// PARLEY_CHAOS_KILLS and PARLEY_CHAOS_SECONDS override the figures of
// either test run.
package chaos

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards loopback TCP connections to the current backend address.
// It reads the WebSocket stream of each connection frame by frame: each
// connection gets its own random delay per forwarded frame, so frames on
// different connections overtake each other; with [Proxy.SetFrameChaos],
// whole data frames are also delivered twice or swapped with the next one
// of the same direction. Cut closes connections abruptly. When the backend
// is down, new connections are closed at once, as a refused connection
// would be.
type Proxy struct {
	ln       net.Listener
	maxDelay time.Duration

	mu      sync.Mutex
	backend string
	conns   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
	rnd     *rand.Rand

	// dup and reorder hold the float64 bits of the chance that a data
	// frame is delivered twice, and held back behind the next one.
	dup, reorder                  atomic.Uint64
	duplicated, reordered, frames atomic.Int64
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	delay          time.Duration
	rnd            *rand.Rand // owned by the link's two pipes, under mu
	mu             sync.Mutex
	once           sync.Once
	done           chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}

func (l *link) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rnd.Float64() < p
}

// ErrClosed is returned by Proxy methods after Close.
var ErrClosed = errors.New("chaos: proxy closed")

// NewProxy listens on 127.0.0.1:0. Each connection's frames are delayed
// by a fixed random duration in [0, maxDelay); seed makes the choice of
// delays, duplicates, swaps and victims repeatable.
func NewProxy(maxDelay time.Duration, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, maxDelay: maxDelay, conns: make(map[*link]struct{}), rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetFrameChaos sets, from the next frame on, the chance that a complete
// WebSocket data frame is delivered twice (dup) and the chance that it is
// held back and delivered after the next data frame in the same direction
// (reorder). A held frame waits at most [HoldLimit]. Only whole
// unfragmented data frames are touched, so the stream stays valid
// WebSocket.
func (p *Proxy) SetFrameChaos(dup, reorder float64) {
	p.dup.Store(math.Float64bits(dup))
	p.reorder.Store(math.Float64bits(reorder))
}

// HoldLimit is how long a frame held back for reordering waits for the
// next frame before it is delivered anyway.
const HoldLimit = 20 * time.Millisecond

// FrameStats returns how many WebSocket frames went through, how many
// were delivered twice and how many were swapped with the next one.
func (p *Proxy) FrameStats() (frames, duplicated, reordered int64) {
	return p.frames.Load(), p.duplicated.Load(), p.reordered.Load()
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBackend points new connections at addr ("" while the server is down).
func (p *Proxy) SetBackend(addr string) {
	p.mu.Lock()
	p.backend = addr
	p.mu.Unlock()
}

// Conns returns how many connections are open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Cut closes a random fraction (0..1) of the open connections and returns
// how many it closed.
func (p *Proxy) Cut(fraction float64) int {
	p.mu.Lock()
	var victims []*link
	for l := range p.conns {
		if p.rnd.Float64() < fraction {
			victims = append(victims, l)
		}
	}
	p.mu.Unlock()
	for _, l := range victims {
		l.close()
	}
	return len(victims)
}

// Close stops accepting, cuts every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut(1)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		backend, closed := p.backend, p.closed
		var delay time.Duration
		if p.maxDelay > 0 {
			delay = time.Duration(p.rnd.Int64N(int64(p.maxDelay)))
		}
		rnd := rand.New(rand.NewPCG(p.rnd.Uint64(), p.rnd.Uint64()))
		p.mu.Unlock()
		if closed || backend == "" {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", backend, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, server: s, delay: delay, rnd: rnd, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			continue
		}
		p.conns[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(l, c, s)
		go p.pipe(l, s, c)
	}
}

// maxHeader bounds an HTTP upgrade request or response head.
const maxHeader = 64 << 10

// pipe copies src to dst: the HTTP head as it is, then, if the connection
// was upgraded to WebSocket, frame by frame with the link's delay and the
// proxy's duplicates and swaps; anything else byte for byte. It tears the
// whole link down when either side ends.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	r := bufio.NewReaderSize(src, 32<<10)
	if start, err := r.Peek(4); err != nil || !(string(start) == "GET " || string(start) == "HTTP") {
		p.copyRaw(l, dst, r) // not HTTP: a plain byte stream
		return
	}
	head, err := readHead(r)
	if len(head) > 0 {
		if _, werr := dst.Write(head); werr != nil {
			return
		}
	}
	if err != nil {
		return
	}
	if !upgraded(head) {
		p.copyRaw(l, dst, r)
		return
	}
	frames := make(chan []byte, 8)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(frames)
		for {
			f, err := readFrame(r)
			if err != nil {
				return
			}
			select {
			case frames <- f:
			case <-l.done:
				return
			}
		}
	}()
	write := func(f []byte) bool {
		if l.delay > 0 {
			time.Sleep(l.delay)
		}
		_, err := dst.Write(f)
		return err == nil
	}
	var held []byte
	var hold *time.Timer
	var expired <-chan time.Time
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	for {
		select {
		case <-l.done:
			return
		case <-expired:
			expired = nil
			if !write(held) {
				return
			}
			held = nil
		case f, ok := <-frames:
			if !ok {
				if held != nil {
					write(held)
				}
				return
			}
			p.frames.Add(1)
			whole := wholeDataFrame(f)
			if held != nil {
				hold.Stop()
				expired = nil
				first, second := held, f
				if whole {
					first, second = f, held
					p.reordered.Add(1)
				}
				held = nil
				if !write(first) || !write(second) {
					return
				}
				continue
			}
			if whole && l.chance(math.Float64frombits(p.reorder.Load())) {
				held = f
				hold = time.NewTimer(HoldLimit)
				expired = hold.C
				continue
			}
			if !write(f) {
				return
			}
			if whole && l.chance(math.Float64frombits(p.dup.Load())) {
				p.duplicated.Add(1)
				if !write(f) {
					return
				}
			}
		}
	}
}

// copyRaw forwards a connection that is not WebSocket chunk by chunk.
func (p *Proxy) copyRaw(l *link, dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if l.delay > 0 {
				time.Sleep(l.delay)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF included: one side is done, so is the link
			return
		}
	}
}

// readHead reads an HTTP request or response head, up to and including
// the blank line.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) && len(head) < maxHeader {
				continue
			}
			return head, err
		}
		if len(head) > maxHeader {
			return head, fmt.Errorf("chaos: HTTP head over %d bytes", maxHeader)
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			return head, nil
		}
	}
}

// upgraded reports whether an HTTP head asks for or grants a WebSocket
// upgrade; the first frame bytes follow it on both sides.
func upgraded(head []byte) bool {
	return bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket"))
}

// maxFrame bounds a WebSocket frame the proxy buffers (the wire protocol's
// frames are far smaller).
const maxFrame = 64 << 20

// readFrame reads one whole WebSocket frame (RFC 6455, Section 5.2),
// header, mask and payload, as it is on the wire.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return nil, err
	}
	n := 2
	size := uint64(h[1] & 0x7f)
	switch size {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return nil, err
		}
		size, n = uint64(binary.BigEndian.Uint16(h[2:4])), 4
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return nil, err
		}
		size, n = binary.BigEndian.Uint64(h[2:10]), 10
	}
	if h[1]&0x80 != 0 { // masked (client to server)
		if _, err := io.ReadFull(r, h[n:n+4]); err != nil {
			return nil, err
		}
		n += 4
	}
	if size > maxFrame {
		return nil, fmt.Errorf("chaos: WebSocket frame of %d bytes", size)
	}
	// Grow with what arrives rather than trust the declared size up front.
	var f bytes.Buffer
	f.Grow(n + int(min(size, 64<<10)))
	f.Write(h[:n])
	if _, err := io.CopyN(&f, r, int64(size)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.Bytes(), nil
}

// wholeDataFrame reports whether f is a complete text or binary message in
// one frame (FIN set, opcode 1 or 2): one that can be repeated or moved
// without breaking the stream.
func wholeDataFrame(f []byte) bool {
	op := f[0] & 0x0f
	return f[0]&0x80 != 0 && (op == 1 || op == 2)
}
