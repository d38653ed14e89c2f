package transfer

import (
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/internal/directio"
)

// A download runs on two goroutines: the calling one reads the ciphertext
// from the connection in blocks of blockChunks sealed chunks and opens each
// chunk in place; the other hashes the plaintext and writes it to the
// output file. AES-GCM and SHA-256 so run on different cores (one
// goroutine doing both was the bottleneck). The file's size is known from
// its reference, so every chunk's length, and which one is last, are known
// before reading. A block reaches the writer only once all its chunks
// authenticated.

// sealedBlock is a block of chunks read from the connection, opened in
// place: each chunk's plaintext starts its slot.
type sealedBlock struct {
	buf    []byte // sealed bytes, chunk after chunk
	first  int64  // index of the first chunk
	chunks int
}

// receiver opens, hashes and writes what the download reads.
type receiver struct {
	open    *filecrypt.ChunkOpener
	out     *directio.Writer
	h       hash.Hash
	nchunks int64 // chunks in the file
	done    int64 // plaintext bytes written, counting those before the start
	limit   int64
	prog    Progress

	full   chan sealedBlock
	free   chan []byte
	failed chan struct{}
	once   sync.Once
	err    error // set before failed is closed
}

// receive reads the ciphertext of chunks first on from body (whose size
// the caller checked), writing the plaintext to out and hashing it into h.
// It returns the plaintext bytes written in all (have before this call).
func receive(body io.Reader, open *filecrypt.ChunkOpener, out *directio.Writer, h hash.Hash, size, have int64, prog Progress) (int64, error) {
	r := &receiver{
		open: open, out: out, h: h,
		nchunks: max(1, (size+filecrypt.ChunkSize-1)/filecrypt.ChunkSize),
		done:    have, limit: size, prog: prog,
		full:   make(chan sealedBlock, sealBlocks),
		free:   make(chan []byte, sealBlocks),
		failed: make(chan struct{}),
	}
	ctSize, err := filecrypt.CiphertextSize(size)
	if err != nil {
		return have, err
	}
	for range sealBlocks {
		r.free <- make([]byte, blockSize)
	}
	first := int64(open.Chunk())
	var wg sync.WaitGroup
	wg.Go(r.write)
	rerr := r.read(body, first, ctSize)
	close(r.full)
	wg.Wait()
	select {
	case <-r.failed:
		// The writer's error (a failed write) explains a read that
		// stopped because of it.
		return r.done, r.err
	default:
	}
	return r.done, rerr
}

// read reads block after block and passes them on; it stops early if the
// writer failed.
func (r *receiver) read(body io.Reader, first, ctSize int64) error {
	for c := first; c < r.nchunks; c += blockChunks {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.failed:
			return nil
		}
		k := min(blockChunks, r.nchunks-c)
		end := min(filecrypt.ChunkOffset(uint64(c+k)), ctSize)
		n := end - filecrypt.ChunkOffset(uint64(c))
		if got, err := io.ReadFull(body, buf[:n]); err != nil {
			// The length was checked: a short body is a cut connection.
			// The whole chunks that arrived are still verified and kept,
			// for a resumed download to continue after them.
			if whole := got / filecrypt.SealedChunkSize; whole > 0 {
				b := sealedBlock{buf: buf[:whole*filecrypt.SealedChunkSize], first: c, chunks: whole}
				if oerr := r.openBlock(b); oerr != nil {
					return oerr
				}
				r.full <- b
			}
			return fmt.Errorf("failed to read ciphertext: %w", err)
		}
		b := sealedBlock{buf: buf[:n], first: c, chunks: int(k)}
		if err := r.openBlock(b); err != nil {
			return err
		}
		r.full <- b
	}
	var one [1]byte
	if n, _ := io.ReadFull(body, one[:]); n != 0 {
		return fmt.Errorf("%w: data after the last chunk", filecrypt.ErrAuthentication)
	}
	return nil
}

func (r *receiver) fail(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.failed)
	})
}

// write hashes and writes each block's chunks.
func (r *receiver) write() {
	for b := range r.full {
		select {
		case <-r.failed:
		default:
			if err := r.writeBlock(b); err != nil {
				r.fail(err)
			}
		}
		r.free <- b.buf[:cap(b.buf)]
	}
}

// openBlock authenticates and decrypts the block's chunks in place: each
// chunk's plaintext is left at the start of its slot.
func (r *receiver) openBlock(b sealedBlock) error {
	for i := range b.chunks {
		sealed := b.buf[i*filecrypt.SealedChunkSize : min((i+1)*filecrypt.SealedChunkSize, len(b.buf))]
		if _, err := r.open.Open(sealed[:0], sealed, b.first+int64(i) == r.nchunks-1); err != nil {
			return err
		}
	}
	return nil
}

// writeBlock hashes and writes the plaintext of an opened block.
func (r *receiver) writeBlock(b sealedBlock) error {
	for i := range b.chunks {
		plain := min((i+1)*filecrypt.SealedChunkSize, len(b.buf)) - i*filecrypt.SealedChunkSize - filecrypt.Overhead
		p := b.buf[i*filecrypt.SealedChunkSize:][:plain]
		r.h.Write(p)
		if _, err := r.out.Write(p); err != nil {
			return fmt.Errorf("failed to write download: %w", err)
		}
		r.done += int64(plain)
		if r.done > r.limit {
			return ErrHashMismatch
		}
		if r.prog != nil {
			r.prog(r.done, r.limit)
		}
	}
	return nil
}
