package filecrypt

import (
	"io"
	"testing"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func BenchmarkEncrypt(b *testing.B) {
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		r, _ := NewEncryptingReader(io.LimitReader(zeros{}, size), testKey(1))
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	const size = 64 << 20
	pr, pw := io.Pipe()
	go func() {
		e, _ := NewEncrypter(pw, testKey(1))
		_, _ = io.Copy(e, io.LimitReader(zeros{}, size))
		_ = e.Close()
		_ = pw.Close()
	}()
	ct, err := io.ReadAll(pr)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		d, _ := NewDecrypter(&byteReader{b: ct}, testKey(1))
		if _, err := io.Copy(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
