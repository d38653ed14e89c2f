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
// from the connection in blocks of blockChunks sealed chunks; the other
// opens each chunk straight into the output file's write buffer (so the
// decryption is the only pass that moves the plaintext), hashes it and
// commits it. The file's size is known from its reference, so every chunk's
// length, and which one is last, are known before reading.

// sealedBlock is a block of sealed chunks read from the connection.
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

	full    chan sealedBlock
	free    chan []byte
	failed  chan struct{}
	once    sync.Once
	err     error // set before failed is closed
	scratch []byte
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
	first := int64(open.Chunk()) // the opener is the writer's from here on
	var wg sync.WaitGroup
	wg.Go(r.write)
	rerr := r.read(body, first, ctSize)
	close(r.full)
	wg.Wait()
	select {
	case <-r.failed:
		// The writer's error (an authentication failure, say) explains a
		// read that stopped because of it.
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
				r.full <- sealedBlock{buf: buf[:whole*filecrypt.SealedChunkSize], first: c, chunks: whole}
			}
			return fmt.Errorf("failed to read ciphertext: %w", err)
		}
		r.full <- sealedBlock{buf: buf[:n], first: c, chunks: int(k)}
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

// write opens, hashes and writes each block's chunks.
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

func (r *receiver) writeBlock(b sealedBlock) error {
	for i := range b.chunks {
		sealed := b.buf[i*filecrypt.SealedChunkSize : min((i+1)*filecrypt.SealedChunkSize, len(b.buf))]
		last := b.first+int64(i) == r.nchunks-1
		plain := len(sealed) - filecrypt.Overhead
		if dst := r.out.Free(); len(dst) >= plain {
			// Decrypt straight into the file's buffer.
			out, err := r.open.Open(dst[:0], sealed, last)
			if err != nil {
				return err
			}
			r.h.Write(out)
			if err := r.out.Commit(len(out)); err != nil {
				return fmt.Errorf("failed to write download: %w", err)
			}
		} else {
			out, err := r.open.Open(r.scratch[:0], sealed, last)
			if err != nil {
				return err
			}
			r.scratch = out
			r.h.Write(out)
			if _, err := r.out.Write(out); err != nil {
				return fmt.Errorf("failed to write download: %w", err)
			}
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
