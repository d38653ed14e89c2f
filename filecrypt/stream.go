package filecrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

const (
	// ChunkSize is the number of plaintext bytes in every chunk but the last.
	ChunkSize = 64 << 10
	// Overhead is the number of bytes each chunk adds (the AEAD tag).
	Overhead = 16
	// HeaderSize is the size of the ciphertext header.
	HeaderSize = 8
	// Version is the format version this package writes.
	Version = 1
	// MaxSize is the largest plaintext size the format accepts (1 TiB), far
	// above any service limit; it keeps every size computation in range.
	MaxSize = 1 << 40

	sealedChunkSize = ChunkSize + Overhead
	nonceSize       = 12
	lastChunkFlag   = 0x01
)

// Errors callers can branch on.
var (
	// ErrAuthentication means the ciphertext was modified, truncated,
	// reordered, extended or encrypted under another key.
	ErrAuthentication = errors.New("filecrypt: ciphertext failed authentication")
	// ErrHeader means the ciphertext does not start with a valid header.
	ErrHeader = errors.New("filecrypt: invalid header")
	// ErrVersion means the header names a format version this package does
	// not know.
	ErrVersion = errors.New("filecrypt: unsupported format version")
	// ErrClosed means a write or close came after Close.
	ErrClosed = errors.New("filecrypt: encrypter already closed")
	// ErrTooLarge means a size exceeds [MaxSize].
	ErrTooLarge = errors.New("filecrypt: size out of range")
)

// headerMagic is the header of format version 1: "parleyf" and the version.
var headerMagic = [HeaderSize]byte{'p', 'a', 'r', 'l', 'e', 'y', 'f', Version}

// Header returns the header every ciphertext of this version starts with.
func Header() [HeaderSize]byte { return headerMagic }

// ParseHeader checks that b begins with a header this package can decrypt
// and returns its version.
func ParseHeader(b []byte) (int, error) {
	if len(b) < HeaderSize {
		return 0, fmt.Errorf("%w: %d bytes, need %d", ErrHeader, len(b), HeaderSize)
	}
	if string(b[:HeaderSize-1]) != string(headerMagic[:HeaderSize-1]) {
		return 0, fmt.Errorf("%w: bad magic", ErrHeader)
	}
	if b[HeaderSize-1] != Version {
		return 0, fmt.Errorf("%w: %d", ErrVersion, b[HeaderSize-1])
	}
	return Version, nil
}

// CiphertextSize returns the size of the ciphertext of a plaintext of the
// given size, header included.
func CiphertextSize(plaintext int64) (int64, error) {
	if plaintext < 0 || plaintext > MaxSize {
		return 0, fmt.Errorf("%w: %d", ErrTooLarge, plaintext)
	}
	chunks := (plaintext + ChunkSize - 1) / ChunkSize
	if chunks == 0 {
		chunks = 1
	}
	return HeaderSize + plaintext + chunks*Overhead, nil
}

// PlaintextSize is the inverse of [CiphertextSize]; it fails for sizes no
// ciphertext can have.
func PlaintextSize(ciphertext int64) (int64, error) {
	body := ciphertext - HeaderSize
	if body < Overhead || ciphertext > MaxSize+MaxSize/ChunkSize*Overhead+HeaderSize+Overhead {
		return 0, fmt.Errorf("%w: no ciphertext has %d bytes", ErrTooLarge, ciphertext)
	}
	full := body / sealedChunkSize
	rest := body % sealedChunkSize
	switch {
	case rest == 0:
		return full * ChunkSize, nil
	case rest <= Overhead:
		if full == 0 && rest == Overhead {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: no ciphertext has %d bytes", ErrTooLarge, ciphertext)
	default:
		return full*ChunkSize + rest - Overhead, nil
	}
}

// ChunkOffset returns where chunk i starts in the ciphertext, for a ranged
// download that resumes at that chunk.
func ChunkOffset(i uint64) int64 {
	return HeaderSize + int64(i)*sealedChunkSize
}

// newAEAD derives the chunk key from the file key, so the file key is never
// used directly and a future version gets an independent key.
func newAEAD(key Key) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key[:], nil, "parley filecrypt v1 chunk key", 32)
	if err != nil {
		return nil, fmt.Errorf("failed to derive chunk key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("failed to create cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("failed to create AEAD: %w", err)
	}
	return aead, nil
}

// chunkNonce writes the nonce of chunk counter into n: the counter big-endian
// in bytes 3..10 (bytes 0..2 stay zero) and the last-chunk flag in byte 11.
func chunkNonce(n *[nonceSize]byte, counter uint64, last bool) {
	*n = [nonceSize]byte{}
	for i := 0; i < 8; i++ {
		n[10-i] = byte(counter >> (8 * i))
	}
	if last {
		n[11] = lastChunkFlag
	}
}

// sealer seals consecutive chunks.
type sealer struct {
	aead    cipher.AEAD
	counter uint64
	nonce   [nonceSize]byte
}

func (s *sealer) seal(dst, plaintext []byte, last bool) []byte {
	chunkNonce(&s.nonce, s.counter, last)
	s.counter++
	return s.aead.Seal(dst, s.nonce[:], plaintext, headerMagic[:])
}

// Encrypter encrypts what is written to it and writes the ciphertext to an
// underlying writer. Close must be called to write the last chunk.
type Encrypter struct {
	dst    io.Writer
	s      sealer
	buf    []byte // pending plaintext, at most ChunkSize
	out    []byte
	closed bool
	err    error
}

// NewEncrypter writes the header to dst and returns an Encrypter.
func NewEncrypter(dst io.Writer, key Key) (*Encrypter, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(headerMagic[:]); err != nil {
		return nil, fmt.Errorf("failed to write header: %w", err)
	}
	return &Encrypter{
		dst: dst,
		s:   sealer{aead: aead},
		buf: make([]byte, 0, ChunkSize),
		out: make([]byte, 0, sealedChunkSize),
	}, nil
}

// Write encrypts p. A full chunk is sealed only once more data follows, so
// that Close can mark the true last chunk.
func (e *Encrypter) Write(p []byte) (int, error) {
	if e.closed {
		return 0, ErrClosed
	}
	if e.err != nil {
		return 0, e.err
	}
	n := 0
	for len(p) > 0 {
		if len(e.buf) == ChunkSize {
			if err := e.flush(false); err != nil {
				return n, err
			}
		}
		k := copy(e.buf[len(e.buf):ChunkSize], p)
		e.buf = e.buf[:len(e.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

func (e *Encrypter) flush(last bool) error {
	if e.s.counter == ^uint64(0) {
		e.err = ErrTooLarge
		return e.err
	}
	e.out = e.s.seal(e.out[:0], e.buf, last)
	e.buf = e.buf[:0]
	if _, err := e.dst.Write(e.out); err != nil {
		e.err = fmt.Errorf("failed to write chunk: %w", err)
		return e.err
	}
	return nil
}

// Close seals and writes the last chunk. It does not close the underlying
// writer.
func (e *Encrypter) Close() error {
	if e.closed {
		return ErrClosed
	}
	e.closed = true
	if e.err != nil {
		return e.err
	}
	return e.flush(true)
}

// EncryptingReader reads plaintext from a source and yields the ciphertext.
type EncryptingReader struct {
	src    io.Reader
	s      sealer
	in     []byte // plaintext chunk buffer, ChunkSize+1 (one byte of look-ahead)
	have   int    // plaintext bytes already in in (the look-ahead byte)
	out    []byte // sealed bytes not yet returned
	outBuf []byte
	done   bool
	err    error
}

// NewEncryptingReader returns a reader of the ciphertext of src, header
// first.
func NewEncryptingReader(src io.Reader, key Key) (*EncryptingReader, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	r := &EncryptingReader{
		src:    src,
		s:      sealer{aead: aead},
		in:     make([]byte, ChunkSize+1),
		outBuf: make([]byte, 0, HeaderSize+sealedChunkSize),
	}
	r.out = append(r.outBuf[:0], headerMagic[:]...)
	return r, nil
}

// Read implements io.Reader.
func (r *EncryptingReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads the next chunk (with one byte of look-ahead to know whether it
// is the last) and seals it into out.
func (r *EncryptingReader) fill() {
	n, err := io.ReadFull(r.src, r.in[r.have:])
	n += r.have
	r.have = 0
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		r.err = fmt.Errorf("failed to read plaintext: %w", err)
		return
	}
	if r.s.counter == ^uint64(0) {
		r.err = ErrTooLarge
		return
	}
	chunk := n
	if !last {
		chunk = ChunkSize
	}
	r.out = r.s.seal(r.outBuf[:0], r.in[:chunk], last)
	if !last {
		r.in[0] = r.in[ChunkSize]
		r.have = 1
	}
	r.done = last
}
