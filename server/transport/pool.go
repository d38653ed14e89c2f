package transport

import "time"

// maxReadWorkers bounds the goroutines reading and handling readable
// connections. When all are busy the poller waits, which slows reading
// from every connection rather than growing memory.
const maxReadWorkers = 1024

// readWorkerIdle is how long an idle read worker waits for work.
const readWorkerIdle = 2 * time.Second

var (
	readReady = make(chan *Conn)                    // idle workers wait here
	readSlots = make(chan struct{}, maxReadWorkers) // one per running worker
)

// dispatch runs one read cycle of c on a worker. Workers are reused, so
// their stacks, grown once by decoding and handling, stay grown.
func dispatch(c *Conn) {
	select {
	case readReady <- c:
		return
	default:
	}
	select {
	case readReady <- c:
	case readSlots <- struct{}{}:
		go readWorker(c)
	}
}

func readWorker(c *Conn) {
	defer func() { <-readSlots }()
	c.cycle()
	t := time.NewTimer(readWorkerIdle)
	defer t.Stop()
	for {
		select {
		case c := <-readReady:
			c.cycle()
			t.Reset(readWorkerIdle)
		case <-t.C:
			return
		}
	}
}
