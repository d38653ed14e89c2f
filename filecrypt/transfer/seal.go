package transfer

import (
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/parley-im/parley/filecrypt"
)

// An upload runs on two goroutines with no copy of the data in user space:
// the reader goroutine reads the file straight into slots of
// filecrypt.SealedChunkSize bytes (one pread per chunk) and computes the
// plaintext SHA-256; the sending goroutine seals every chunk in place in its
// slot (so the block's ciphertext is contiguous), computes the CRC-64 and
// hands the sealed block to the HTTP request. Memory is bounded by
// sealBlocks blocks of blockChunks slots.
const (
	blockChunks = 16 // chunks per block: 1 MiB of plaintext
	blockSize   = blockChunks * filecrypt.SealedChunkSize
	sealBlocks  = 3
)

// plainBlock is a block of plaintext chunks in their slots.
type plainBlock struct {
	buf    []byte // blockSize bytes
	first  int64  // index of the block's first chunk
	chunks int    // chunks read
	tail   int    // plaintext bytes in the last of them
	err    error
}

// sealingReader yields the ciphertext of a file of a known size, header
// first, reading the file on its own goroutine.
type sealingReader struct {
	seal    *filecrypt.ChunkSealer
	crc     hash.Hash
	nchunks int64 // chunks in the file
	full    chan plainBlock
	free    chan []byte
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	out     []byte // sealed bytes not yet returned
	cur     []byte // buffer out points into, returned to free when consumed
	header  bool   // header still to return
	done    bool
	err     error
}

// newSealingReader starts reading size bytes of src, hashing the plaintext
// into plain; the CRC of the ciphertext goes into crc as it is read.
func newSealingReader(src io.ReaderAt, size int64, key filecrypt.Key, plain, crc hash.Hash) (*sealingReader, error) {
	s, err := filecrypt.NewChunkSealer(key)
	if err != nil {
		return nil, err
	}
	r := &sealingReader{
		seal: s, crc: crc,
		nchunks: max(1, (size+filecrypt.ChunkSize-1)/filecrypt.ChunkSize),
		full:    make(chan plainBlock, sealBlocks),
		free:    make(chan []byte, sealBlocks),
		stop:    make(chan struct{}),
		header:  true,
	}
	for range sealBlocks {
		r.free <- make([]byte, blockSize)
	}
	r.wg.Go(func() { r.read(src, size, plain) })
	return r, nil
}

// read fills blocks with the file's chunks, in order.
func (r *sealingReader) read(src io.ReaderAt, size int64, h hash.Hash) {
	for first := int64(0); first < r.nchunks; first += blockChunks {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stop:
			return
		}
		b := plainBlock{buf: buf, first: first}
		for i := 0; i < blockChunks && first+int64(i) < r.nchunks; i++ {
			off := (first + int64(i)) * filecrypt.ChunkSize
			slot := buf[i*filecrypt.SealedChunkSize:][:min(filecrypt.ChunkSize, size-off)]
			n, err := src.ReadAt(slot, off)
			if n < len(slot) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				b.err = fmt.Errorf("failed to read file (did it change while sending?): %w", err)
				break
			}
			h.Write(slot)
			b.chunks, b.tail = i+1, n
		}
		select {
		case r.full <- b:
		case <-r.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// Read implements io.Reader.
func (r *sealingReader) Read(p []byte) (int, error) {
	if r.header {
		r.header = false
		h := filecrypt.Header()
		r.crc.Write(h[:])
		r.out = append(r.out[:0:0], h[:]...)
	}
	for len(r.out) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// next seals the next block.
func (r *sealingReader) next() error {
	if r.err != nil {
		return r.err
	}
	if r.cur != nil {
		r.free <- r.cur
		r.cur = nil
	}
	if r.done {
		return io.EOF
	}
	b := <-r.full
	if b.err != nil {
		r.err = b.err
		return r.err
	}
	r.cur = b.buf
	end := 0
	for i := range b.chunks {
		n := filecrypt.ChunkSize
		last := b.first+int64(i) == r.nchunks-1
		if last {
			n = b.tail
		}
		sealed, err := r.seal.Seal(b.buf[i*filecrypt.SealedChunkSize:], n, last)
		if err != nil {
			r.err = err
			return err
		}
		end = i*filecrypt.SealedChunkSize + len(sealed)
		r.done = last
	}
	r.out = b.buf[:end]
	r.crc.Write(r.out)
	return nil
}

// Close stops the reader goroutine and waits for it; it may be called
// twice. The plaintext hash is complete once Read has returned io.EOF.
func (r *sealingReader) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}
