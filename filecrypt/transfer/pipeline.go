package transfer

import (
	"errors"
	"hash"
	"io"
	"sync"
)

// The helpers here move plaintext hashing onto its own goroutine, so that
// on a machine with two or more cores hashing runs alongside encryption or
// decryption. Memory stays bounded: pipeBuffers buffers of pipeBufferSize.
const (
	pipeBufferSize = 1 << 20
	pipeBuffers    = 3
)

var errPipeClosed = errors.New("transfer: pipeline closed")

type block struct {
	b   []byte
	buf []byte // the whole buffer, returned to free when b is consumed
	err error
}

// hashingReader reads src ahead on a goroutine, hashing what it reads.
type hashingReader struct {
	full chan block
	free chan []byte
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	cur  block
}

func newHashingReader(src io.Reader, h hash.Hash) *hashingReader {
	r := &hashingReader{full: make(chan block, pipeBuffers), free: make(chan []byte, pipeBuffers), stop: make(chan struct{})}
	for range pipeBuffers {
		r.free <- make([]byte, pipeBufferSize)
	}
	r.wg.Go(func() { r.run(src, h) })
	return r
}

func (r *hashingReader) run(src io.Reader, h hash.Hash) {
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stop:
			return
		}
		n, err := io.ReadFull(src, buf)
		h.Write(buf[:n])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case r.full <- block{b: buf[:n], buf: buf, err: err}:
		case <-r.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader. The hash covers everything once Read has
// returned io.EOF.
func (r *hashingReader) Read(p []byte) (int, error) {
	for len(r.cur.b) == 0 {
		if r.cur.err != nil {
			return 0, r.cur.err
		}
		if r.cur.buf != nil {
			r.free <- r.cur.buf
			r.cur.buf = nil
		}
		r.cur = <-r.full
	}
	n := copy(p, r.cur.b)
	r.cur.b = r.cur.b[n:]
	return n, nil
}

// Close stops the goroutine and waits for it; it may be called twice.
func (r *hashingReader) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}

// hashingWriter writes to w and hashes on a goroutine.
type hashingWriter struct {
	full chan []byte
	free chan []byte
	done chan struct{}
	cur  []byte
	mu   sync.Mutex
	err  error
}

func newHashingWriter(w io.Writer, h hash.Hash) *hashingWriter {
	hw := &hashingWriter{full: make(chan []byte, pipeBuffers), free: make(chan []byte, pipeBuffers), done: make(chan struct{})}
	for range pipeBuffers - 1 {
		hw.free <- make([]byte, 0, pipeBufferSize)
	}
	hw.cur = make([]byte, 0, pipeBufferSize)
	go func() {
		defer close(hw.done)
		for b := range hw.full {
			if hw.failed() == nil {
				h.Write(b)
				if _, err := w.Write(b); err != nil {
					hw.mu.Lock()
					hw.err = err
					hw.mu.Unlock()
				}
			}
			hw.free <- b[:0]
		}
	}()
	return hw
}

func (hw *hashingWriter) failed() error {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	return hw.err
}

// Write implements io.Writer; errors of the underlying writer surface on a
// later Write or on Close.
func (hw *hashingWriter) Write(p []byte) (int, error) {
	if hw.cur == nil {
		return 0, errPipeClosed
	}
	if err := hw.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		k := copy(hw.cur[len(hw.cur):cap(hw.cur)], p)
		hw.cur = hw.cur[:len(hw.cur)+k]
		p = p[k:]
		if len(hw.cur) == cap(hw.cur) {
			hw.full <- hw.cur
			hw.cur = <-hw.free
		}
	}
	return n, nil
}

// Close flushes, waits for the goroutine and reports the first write error.
func (hw *hashingWriter) Close() error {
	if hw.cur == nil {
		return errPipeClosed
	}
	if len(hw.cur) > 0 {
		hw.full <- hw.cur
	}
	hw.cur = nil
	close(hw.full)
	<-hw.done
	return hw.failed()
}
