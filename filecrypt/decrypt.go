package filecrypt

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// Decrypter reads ciphertext from an underlying reader and yields the
// plaintext, one authenticated chunk at a time. It returns io.EOF only after
// the last chunk authenticated and the source ended right after it; any
// modification, truncation or trailing data yields an error wrapping
// [ErrAuthentication], and no plaintext of a chunk that failed is released.
type Decrypter struct {
	src     io.Reader
	aead    cipher.AEAD
	counter uint64
	nonce   [nonceSize]byte
	in      []byte // sealed chunk plus one byte of look-ahead
	look    bool   // a look-ahead byte is kept in ahead
	ahead   byte
	out     []byte // plaintext not yet returned
	done    bool
	err     error
}

// NewDecrypter reads and checks the header from src and returns a Decrypter
// of the whole file.
func NewDecrypter(src io.Reader, key Key) (*Decrypter, error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(src, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated", ErrHeader)
		}
		return nil, fmt.Errorf("failed to read header: %w", err)
	}
	if _, err := ParseHeader(h[:]); err != nil {
		return nil, err
	}
	return NewChunkDecrypter(src, key, 0)
}

// NewChunkDecrypter returns a Decrypter of a ciphertext read from chunk
// index first on: src must start at [ChunkOffset](first) of the ciphertext.
// It verifies every chunk, including that the last one carries the
// last-chunk flag and that nothing follows it.
func NewChunkDecrypter(src io.Reader, key Key, first uint64) (*Decrypter, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if first > MaxSize/ChunkSize {
		return nil, fmt.Errorf("%w: chunk %d", ErrTooLarge, first)
	}
	return &Decrypter{
		src:     src,
		aead:    aead,
		counter: first,
		in:      make([]byte, sealedChunkSize+1),
	}, nil
}

// Chunk returns the index of the next chunk the Decrypter will read.
func (d *Decrypter) Chunk() uint64 { return d.counter }

// Read implements io.Reader.
func (d *Decrypter) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		d.err = d.next()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo implements io.WriterTo: it writes the plaintext of each chunk to
// w as soon as the chunk authenticated, without copying it first (io.Copy
// uses it). It returns nil after the last chunk authenticated and the source
// ended right after it.
func (d *Decrypter) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(d.out) > 0 {
			n, err := w.Write(d.out)
			total += int64(n)
			d.out = d.out[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if d.err != nil {
			return total, d.err
		}
		if d.done {
			return total, nil
		}
		d.err = d.next()
	}
}

// next reads and opens one chunk. A chunk followed by more data is opened as
// a middle chunk; a chunk that ends the source must open as the last one.
func (d *Decrypter) next() error {
	have := 0
	if d.look {
		// out (which aliases in) is fully consumed by now.
		d.in[0] = d.ahead
		have, d.look = 1, false
	}
	n, err := io.ReadFull(d.src, d.in[have:])
	n += have
	last := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return fmt.Errorf("failed to read ciphertext: %w", err)
	}
	chunk := n
	if !last {
		chunk = sealedChunkSize
	}
	if chunk < Overhead {
		return fmt.Errorf("%w: truncated chunk %d", ErrAuthentication, d.counter)
	}
	if last && chunk == Overhead && d.counter > 0 {
		// Only an empty file has an empty last chunk; a full chunk followed
		// by an empty one is not a valid encoding.
		return fmt.Errorf("%w: empty last chunk %d", ErrAuthentication, d.counter)
	}
	chunkNonce(&d.nonce, d.counter, last)
	out, err := d.aead.Open(d.in[:0], d.nonce[:], d.in[:chunk], headerMagic[:])
	if err != nil {
		return fmt.Errorf("%w: chunk %d", ErrAuthentication, d.counter)
	}
	d.counter++
	d.out = out
	if last {
		d.done = true
		return nil
	}
	// Opening in place left the look-ahead byte after the sealed chunk.
	d.ahead, d.look = d.in[sealedChunkSize], true
	return nil
}
