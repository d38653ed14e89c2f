// Package directio appends to a file through the page cache or, where the
// file system supports it, around it (O_DIRECT on Linux), with the device
// write of one buffer overlapping the filling of the next.
//
// Large sequential writes through the page cache cost a memory copy per
// byte and leave gigabytes of dirty pages for the final fsync to flush;
// with O_DIRECT the device reads the process's buffer itself and a Sync has
// little left to do. File systems without O_DIRECT (tmpfs, some network file
// systems) get the same interface over ordinary writes.
package directio

import (
	"fmt"
	"io"
	"os"
)

// BufferSize is the size of each of the two buffers of a [Writer].
const BufferSize = 1 << 20

// align is the alignment O_DIRECT needs for offsets, lengths and memory
// (the largest logical block size in common use).
const align = 4096

// Writer appends to one file. It is not safe for concurrent use.
type Writer struct {
	f      *os.File
	direct bool
	bufs   [2][]byte
	cur    int   // index of the buffer being filled
	n      int   // bytes in bufs[cur]
	base   int64 // file offset of bufs[cur][0]; aligned when direct
	size   int64 // logical size: base + n
	flight chan error
	busy   bool // a write of bufs[cur^1] is in flight
	err    error
}

// Append opens path for appending at offset: the file (created if missing)
// is cut to offset bytes, and writes continue from there. It fails if the
// file holds fewer than offset bytes.
func Append(path string, offset int64) (*Writer, error) {
	f, direct, err := openFile(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{f: f, direct: direct, flight: make(chan error, 1)}
	if err := w.start(offset); err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

// newBuffer returns a zeroed, align-aligned buffer of BufferSize bytes.
func newBuffer() []byte {
	raw := make([]byte, BufferSize+align)
	return raw[alignOffset(raw):][:BufferSize:BufferSize]
}

func (w *Writer) start(offset int64) error {
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", w.f.Name(), err)
	}
	if st.Size() < offset {
		return fmt.Errorf("%w: %s holds %d bytes, need %d", io.ErrUnexpectedEOF, w.f.Name(), st.Size(), offset)
	}
	if st.Size() > offset {
		if err := w.f.Truncate(offset); err != nil {
			return fmt.Errorf("failed to cut %s: %w", w.f.Name(), err)
		}
	}
	w.bufs = [2][]byte{newBuffer(), newBuffer()}
	w.base, w.size = offset, offset
	if w.direct {
		// Start at the block holding offset, with its bytes already
		// stored in the buffer, so every device write is aligned.
		w.base = offset &^ (align - 1)
		w.n = int(offset - w.base)
		if w.n > 0 {
			if err := readTail(w.f.Name(), w.bufs[0][:w.n], w.base); err != nil {
				return err
			}
		}
	}
	return nil
}

// readTail reads the bytes of the last partial block through an ordinary
// descriptor (O_DIRECT reads would need an aligned length).
func readTail(path string, p []byte, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.ReadAt(p, off); err != nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	return nil
}

// Size returns the number of bytes written so far, from the start of the
// file.
func (w *Writer) Size() int64 { return w.size }

// Write implements io.Writer. Data reaches the file in whole buffers; call
// Sync to make everything written so far durable.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for len(p) > 0 {
		k := copy(w.bufs[w.cur][w.n:], p)
		w.n += k
		w.size += int64(k)
		p = p[k:]
		done += k
		if w.n == BufferSize {
			if err := w.flushFull(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// ReadFrom implements io.ReaderFrom, reading straight into the buffers.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if w.err != nil {
			return total, w.err
		}
		k, err := r.Read(w.bufs[w.cur][w.n:])
		w.n += k
		w.size += int64(k)
		total += int64(k)
		if w.n == BufferSize {
			if ferr := w.flushFull(); ferr != nil {
				return total, ferr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// wait waits for the write in flight, if any.
func (w *Writer) wait() error {
	if w.busy {
		w.busy = false
		if err := <-w.flight; err != nil && w.err == nil {
			w.err = err
		}
	}
	return w.err
}

// flushFull starts writing the full current buffer and switches to the
// other one.
func (w *Writer) flushFull() error {
	if err := w.wait(); err != nil {
		return err
	}
	buf, off := w.bufs[w.cur], w.base
	w.busy = true
	go func() { w.flight <- w.writeAt(buf, off) }()
	w.cur ^= 1
	w.base += BufferSize
	w.n = 0
	return nil
}

func (w *Writer) writeAt(p []byte, off int64) error {
	if _, err := w.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("failed to write %s: %w", w.f.Name(), err)
	}
	return nil
}

// Sync writes everything buffered and makes the file's first Size bytes
// durable.
func (w *Writer) Sync() error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.n > 0 {
		if err := w.flushPartial(); err != nil {
			w.err = err
			return err
		}
	}
	if err := datasync(w.f); err != nil {
		w.err = fmt.Errorf("failed to sync %s: %w", w.f.Name(), err)
		return w.err
	}
	return nil
}

// flushPartial writes the partial current buffer. With O_DIRECT the last
// block goes out padded, the file is cut back to its logical size, and the
// block's bytes stay at the start of the buffer to be written again, whole,
// later.
func (w *Writer) flushPartial() error {
	buf := w.bufs[w.cur]
	if !w.direct {
		if err := w.writeAt(buf[:w.n], w.base); err != nil {
			return err
		}
		w.base += int64(w.n)
		w.n = 0
		return nil
	}
	whole := (w.n + align - 1) &^ (align - 1)
	clear(buf[w.n:whole])
	if err := w.writeAt(buf[:whole], w.base); err != nil {
		return err
	}
	if whole != w.n {
		if err := w.f.Truncate(w.size); err != nil {
			return fmt.Errorf("failed to cut %s: %w", w.f.Name(), err)
		}
	}
	full := w.n &^ (align - 1)
	copy(buf, buf[full:w.n])
	w.base += int64(full)
	w.n -= full
	return nil
}

// Close syncs and closes the file.
func (w *Writer) Close() error {
	err := w.Sync()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("failed to close %s: %w", w.f.Name(), cerr)
	}
	return err
}

// Abort closes the file without syncing (after a failure); what was written
// may or may not be in it.
func (w *Writer) Abort() error {
	_ = w.wait()
	return w.f.Close()
}
