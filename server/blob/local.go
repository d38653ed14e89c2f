package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parley-im/parley/internal/directio"
)

// Local stores blobs as files in a folder, in subfolders named by the first
// two characters of the id. An unfinished blob is "<id>.part", synced at
// every checkpoint and at the end of every append request; Finish renames
// it to "<id>".
type Local struct {
	dir     string
	segment int
}

// LocalSegmentSize is the handler buffer size for the local backend.
const LocalSegmentSize = 1 << 20

// NewLocal returns a backend storing blobs under dir (created if needed).
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create blob folder: %w", err)
	}
	return &Local{dir: dir, segment: LocalSegmentSize}, nil
}

func (l *Local) path(id ID) string {
	s := id.String()
	return filepath.Join(l.dir, s[:2], s)
}

// SegmentSize implements [Backend].
func (l *Local) SegmentSize() int { return l.segment }

// OpenAppend implements [Backend]. Appends bypass the page cache where the
// file system allows (see internal/directio), so a long upload neither
// costs a memory copy per byte nor leaves gigabytes of dirty pages for the
// sync at each checkpoint.
func (l *Local) OpenAppend(_ context.Context, id ID, offset int64) (Appender, error) {
	p := l.path(id) + ".part"
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create blob folder: %w", err)
	}
	w, err := directio.Append(p, offset)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to prepare blob for append: %w", err)
	}
	return localAppender{w}, nil
}

type localAppender struct{ w *directio.Writer }

func (a localAppender) Append(p []byte) error {
	if _, err := a.w.Write(p); err != nil {
		return fmt.Errorf("failed to append to blob: %w", err)
	}
	return nil
}

// AppendFrom reads r to its end straight into the writer's buffers.
func (a localAppender) AppendFrom(r io.Reader) (int64, error) {
	n, err := a.w.ReadFrom(r)
	if err != nil {
		return n, fmt.Errorf("failed to append to blob: %w", err)
	}
	return n, nil
}

func (a localAppender) Sync() error {
	if err := a.w.Sync(); err != nil {
		return fmt.Errorf("failed to sync blob: %w", err)
	}
	return nil
}

func (a localAppender) Close() error {
	if err := a.w.Close(); err != nil {
		return fmt.Errorf("failed to sync blob: %w", err)
	}
	return nil
}

// Finish implements [Backend].
func (l *Local) Finish(_ context.Context, id ID, size int64) error {
	p := l.path(id)
	st, err := os.Stat(p + ".part")
	if errors.Is(err, os.ErrNotExist) && size == 0 {
		// An empty blob gets no append; create its file now.
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("failed to create blob folder: %w", err)
		}
		if err := os.WriteFile(p+".part", nil, 0o600); err != nil {
			return fmt.Errorf("failed to finish blob: %w", err)
		}
		st, err = os.Stat(p + ".part")
	}
	if err != nil {
		return fmt.Errorf("failed to finish blob: %w", err)
	}
	if st.Size() != size {
		return fmt.Errorf("%w: %d bytes stored, want %d", ErrCorrupt, st.Size(), size)
	}
	if err := os.Rename(p+".part", p); err != nil {
		return fmt.Errorf("failed to finish blob: %w", err)
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync blob folder: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to sync blob folder: %w", err)
	}
	return nil
}

// Open implements [Backend]. The reader bypasses the page cache where the
// file system allows, like appends.
func (l *Local) Open(_ context.Context, id ID, size int64) (io.ReadSeekCloser, error) {
	r, err := directio.Open(l.path(id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: data missing", ErrCorrupt)
		}
		return nil, fmt.Errorf("failed to open blob: %w", err)
	}
	if r.Size() != size {
		_ = r.Close()
		return nil, fmt.Errorf("%w: stored size differs from record", ErrCorrupt)
	}
	return r, nil
}

// Delete implements [Backend].
func (l *Local) Delete(_ context.Context, id ID) error {
	p := l.path(id)
	for _, name := range []string{p, p + ".part"} {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to delete blob: %w", err)
		}
	}
	return nil
}
