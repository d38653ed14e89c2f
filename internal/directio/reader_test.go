package directio

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestReader reads files of awkward sizes from awkward positions, with Read
// and with WriteTo, and compares with the bytes written.
func TestReader(t *testing.T) {
	for name, dir := range folders(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for _, size := range []int{0, 1, align - 1, align + 1, BufferSize, 2*BufferSize + 777} {
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				path := filepath.Join(dir, "r")
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				r, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if r.Size() != int64(size) {
					t.Fatalf("Size %d, want %d", r.Size(), size)
				}
				for _, start := range []int{0, size / 3, size - 1, size} {
					start = max(0, start)
					if _, err := r.Seek(int64(start), io.SeekStart); err != nil {
						t.Fatal(err)
					}
					var got bytes.Buffer
					if start%2 == 0 {
						_, err = io.Copy(&got, struct{ io.Reader }{r}) // Read only
					} else {
						_, err = r.WriteTo(&got)
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), data[start:]) {
						t.Fatalf("size %d from %d: read %d bytes that differ from the file", size, start, got.Len())
					}
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestReaderShrunk: a file cut while open ends the read with an error, not
// with fewer bytes passed off as the whole.
func TestReaderShrunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r")
	if err := os.WriteFile(path, make([]byte, 3*BufferSize), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(path, BufferSize); err != nil {
		t.Fatal(err)
	}
	if n, err := r.WriteTo(io.Discard); err == nil {
		t.Fatalf("WriteTo of a shrunk file returned %d bytes and no error", n)
	}
}
