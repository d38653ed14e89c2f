// Package chaos is Parley's chaos harness: real `parley serve` processes
// killed with SIGKILL and restarted, many real SDK clients, and a loopback
// TCP [Proxy] between them that delays traffic, reorders it across
// connections and cuts connections. Its tests check afterwards that every
// message a client accepted for sending reached every member device exactly
// once, in the same order everywhere, with nothing undecryptable.
//
// The bounded run is part of `go test ./internal/chaos`. The long run (50
// devices, 10,000 messages, 20 server kills) is one command:
//
//	PARLEY_CHAOS=long go test ./internal/chaos -run Long -timeout 2h -v
//
// PARLEY_CHAOS_ACCOUNTS, PARLEY_CHAOS_MESSAGES, PARLEY_CHAOS_KILLS and
// PARLEY_CHAOS_SECONDS override the figures of either run.
package chaos

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Proxy forwards loopback TCP connections to the current backend address.
// Each connection gets its own random delay per forwarded chunk, so frames
// on different connections overtake each other (reordering across
// connections) while each stream stays intact, as TCP promises. Cut closes
// connections abruptly. When the backend is down, new connections are
// closed at once, as a refused connection would be.
type Proxy struct {
	ln       net.Listener
	maxDelay time.Duration

	mu      sync.Mutex
	backend string
	conns   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
	rnd     *rand.Rand
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	delay          time.Duration
	once           sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		l.server.Close()
	})
}

// ErrClosed is returned by Proxy methods after Close.
var ErrClosed = errors.New("chaos: proxy closed")

// NewProxy listens on 127.0.0.1:0. Each connection's chunks are delayed
// by a fixed random duration in [0, maxDelay); seed makes the choice of
// delays and victims repeatable.
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
		l := &link{client: c, server: s, delay: delay}
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

// pipe copies src to dst chunk by chunk, each after the link's delay, and
// tears the whole link down when either side ends.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
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
