package filecrypt

import (
	"crypto/cipher"
	"fmt"
)

// SealedChunkSize is the size of every sealed chunk but the last: a full
// chunk of plaintext and its tag. A buffer laid out in slots of this size
// holds consecutive chunks sealed in place back to back, as they appear in
// the ciphertext.
const SealedChunkSize = sealedChunkSize

// ChunkSealer seals the chunks of one file in order, in place in the
// caller's buffers, for pipelines that read plaintext straight into slots of
// [SealedChunkSize] bytes and send the sealed slots without copying them.
// Its output is byte for byte that of [NewEncryptingReader] after the
// header.
type ChunkSealer struct{ s sealer }

// NewChunkSealer returns a sealer of the chunks of the file encrypted under
// key, starting at chunk 0.
func NewChunkSealer(key Key) (*ChunkSealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &ChunkSealer{s: sealer{aead: aead}}, nil
}

// Chunk returns the index of the next chunk Seal seals.
func (c *ChunkSealer) Chunk() uint64 { return c.s.counter }

// Seal seals the next chunk, whose n bytes of plaintext are buf[:n], in
// place and returns the sealed chunk buf[:n+Overhead]. Every chunk but the
// last must be full (n == ChunkSize); last marks the final chunk, which may
// be shorter, and is empty only for an empty file. buf must have room for
// the tag (cap(buf) >= n+Overhead).
func (c *ChunkSealer) Seal(buf []byte, n int, last bool) ([]byte, error) {
	switch {
	case n < 0 || n > ChunkSize || (!last && n != ChunkSize):
		return nil, fmt.Errorf("filecrypt: chunk %d of %d bytes", c.s.counter, n)
	case last && n == 0 && c.s.counter > 0:
		return nil, fmt.Errorf("filecrypt: empty last chunk %d", c.s.counter)
	case cap(buf) < n+Overhead:
		return nil, fmt.Errorf("filecrypt: no room for the tag of chunk %d", c.s.counter)
	case c.s.counter == ^uint64(0):
		return nil, ErrTooLarge
	}
	return c.s.seal(buf[:0], buf[:n], last), nil
}

// ChunkOpener opens the chunks of one file in order, for callers that know
// the file's size (from its [FileRef]) and so where each chunk, and the
// last, ends. It checks what [Decrypter] checks: every chunk authenticates
// under its index, and the last one carries the last-chunk flag.
type ChunkOpener struct {
	aead    cipher.AEAD
	counter uint64
	nonce   [nonceSize]byte
}

// NewChunkOpener returns an opener of the chunks of the file encrypted
// under key, from chunk index first on.
func NewChunkOpener(key Key, first uint64) (*ChunkOpener, error) {
	if first > MaxSize/ChunkSize {
		return nil, fmt.Errorf("%w: chunk %d", ErrTooLarge, first)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &ChunkOpener{aead: aead, counter: first}, nil
}

// Chunk returns the index of the next chunk Open opens.
func (o *ChunkOpener) Chunk() uint64 { return o.counter }

// Open authenticates the next sealed chunk and appends its plaintext to dst
// (which must not overlap sealed, unless exactly, as in sealed[:0]). last
// says whether the chunk is the file's final one; a middle chunk must be
// [SealedChunkSize] bytes. Any failure wraps [ErrAuthentication] and
// returns dst unchanged (its spare capacity may have been overwritten, but
// with no plaintext: the AEAD clears it).
func (o *ChunkOpener) Open(dst, sealed []byte, last bool) ([]byte, error) {
	switch {
	case len(sealed) < Overhead || len(sealed) > sealedChunkSize || (!last && len(sealed) != sealedChunkSize):
		return dst, fmt.Errorf("%w: chunk %d has %d bytes", ErrAuthentication, o.counter, len(sealed))
	case last && len(sealed) == Overhead && o.counter > 0:
		return dst, fmt.Errorf("%w: empty last chunk %d", ErrAuthentication, o.counter)
	}
	chunkNonce(&o.nonce, o.counter, last)
	out, err := o.aead.Open(dst, o.nonce[:], sealed, headerMagic[:])
	if err != nil {
		return dst, fmt.Errorf("%w: chunk %d", ErrAuthentication, o.counter)
	}
	o.counter++
	return out, nil
}
