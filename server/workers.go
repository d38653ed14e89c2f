package server

import "time"

// workers runs request handlers on reusable goroutines. A handler goes to
// an idle worker if there is one, else to a new one; a worker that finds no
// work for workerIdle exits. Reuse keeps handler stacks grown once (store,
// protobuf and crypto call chains are deep) instead of growing a fresh
// stack per request; the number of workers follows the number of requests
// in flight, which Limits.MaxInFlight bounds per connection.
type workers struct {
	ready chan func() // unbuffered: idle workers wait on it
}

// workerIdle is how long an idle worker waits for work before it exits.
const workerIdle = 2 * time.Second

func newWorkers() *workers { return &workers{ready: make(chan func())} }

// run starts f on a worker.
func (w *workers) run(f func()) {
	select {
	case w.ready <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	f()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case f := <-w.ready:
			f()
			t.Reset(workerIdle)
		case <-t.C:
			return
		}
	}
}
