//go:build linux

package transport

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// errWouldBlock is returned by pollReg.read when the socket is drained.
var errWouldBlock = unix.EAGAIN

// pollEvents are the events a parked connection waits for. EPOLLONESHOT
// disarms it once reported, so exactly one worker handles it until it is
// re-armed; level triggering reports again what is still unread.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// poller is one epoll instance and the goroutine that waits on it.
type poller struct {
	epfd int

	mu    sync.Mutex
	conns map[int32]pollEntry // by file descriptor
}

// pollEntry tells apart two connections that had the same descriptor: an
// event fetched before one was closed must not wake the next.
type pollEntry struct {
	c  *Conn
	id uint32
}

// pollReg is a connection's registration with a poller.
type pollReg struct {
	p   *poller
	fd  int
	id  uint32
	raw syscall.RawConn
}

var (
	pollersOnce sync.Once
	pollers     []*poller
	pollSeq     atomic.Uint32
)

// numPollers is the number of epoll instances: a few, each with one
// waiting goroutine, for all connections.
func numPollers() int { return max(1, min(4, runtime.GOMAXPROCS(0)/2)) }

func startPollers() {
	for range numPollers() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			break
		}
		p := &poller{epfd: epfd, conns: make(map[int32]pollEntry)}
		pollers = append(pollers, p)
		go p.wait()
	}
}

// register parks c in a poller, or returns nil if c's socket cannot be
// polled (TLS, not a socket, no epoll): c then gets a read goroutine.
// The registration is not armed; the caller runs a first read cycle.
func register(c *Conn) *pollReg {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	pollersOnce.Do(startPollers)
	if len(pollers) == 0 {
		return nil
	}
	var fd int
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return nil
	}
	reg := &pollReg{p: pollers[fd%len(pollers)], fd: fd, id: pollSeq.Add(1), raw: raw}
	p := reg.p
	p.mu.Lock()
	p.conns[int32(fd)] = pollEntry{c: c, id: reg.id}
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: 0, Fd: int32(fd), Pad: int32(reg.id)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.conns, int32(fd))
		p.mu.Unlock()
		return nil
	}
	return reg
}

// read reads without blocking; errWouldBlock means nothing is pending.
func (r *pollReg) read(b []byte) (int, error) {
	var n int
	var rerr error
	err := r.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	return n, rerr
}

// rearm parks the connection until it is readable again. The caller holds
// the connection's read lock and the socket is open.
func (r *pollReg) rearm() error {
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(r.fd), Pad: int32(r.id)}
	if err := unix.EpollCtl(r.p.epfd, unix.EPOLL_CTL_MOD, r.fd, &ev); err != nil {
		return fmt.Errorf("failed to re-arm connection: %w", err)
	}
	return nil
}

// remove forgets the connection. The socket is closed right after (which
// also takes it out of the epoll set) or already was.
func (r *pollReg) remove() {
	p := r.p
	p.mu.Lock()
	if e, ok := p.conns[int32(r.fd)]; ok && e.id == r.id {
		delete(p.conns, int32(r.fd))
	}
	p.mu.Unlock()
}

// wait hands readable connections to read workers, forever.
func (p *poller) wait() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			// EINTR; nothing else is expected on a valid epoll descriptor.
			continue
		}
		for i := range n {
			ev := events[i]
			p.mu.Lock()
			e, ok := p.conns[ev.Fd]
			p.mu.Unlock()
			if !ok || e.id != uint32(ev.Pad) {
				continue
			}
			if e.c.read.tryStart() {
				dispatch(e.c)
			}
		}
	}
}
