package filecrypt

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// sealSlots seals plaintext with a ChunkSealer the way an upload does:
// each chunk read into a slot of SealedChunkSize bytes and sealed in place.
func sealSlots(t *testing.T, key Key, plaintext []byte) []byte {
	t.Helper()
	s, err := NewChunkSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	chunks := max(1, (len(plaintext)+ChunkSize-1)/ChunkSize)
	slots := make([]byte, chunks*SealedChunkSize)
	end := 0
	for i := range chunks {
		slot := slots[i*SealedChunkSize:]
		n := copy(slot[:min(ChunkSize, len(plaintext)-i*ChunkSize)], plaintext[i*ChunkSize:])
		sealed, err := s.Seal(slot, n, i == chunks-1)
		if err != nil {
			t.Fatal(err)
		}
		if &sealed[0] != &slot[0] {
			t.Fatal("Seal did not seal in place")
		}
		end = i*SealedChunkSize + len(sealed)
	}
	return slots[:end]
}

// TestChunkSealerOpener: sealing in slots gives exactly the stream
// encoding, and ChunkOpener (from chunk 0 and from a later chunk) returns
// the plaintext.
func TestChunkSealerOpener(t *testing.T) {
	key := testKey(3)
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5, 4 * ChunkSize} {
		pt := make([]byte, size)
		for i := range pt {
			pt[i] = byte(i*7 + size)
		}
		body := sealSlots(t, key, pt)
		r, err := NewEncryptingReader(bytes.NewReader(pt), key)
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want[HeaderSize:], body) {
			t.Fatalf("size %d: ChunkSealer output differs from the stream encoding", size)
		}
		chunks := max(1, (size+ChunkSize-1)/ChunkSize)
		for _, first := range []int{0, chunks - 1} {
			o, err := NewChunkOpener(key, uint64(first))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for i := first; i < chunks; i++ {
				sealed := body[i*SealedChunkSize : min((i+1)*SealedChunkSize, len(body))]
				if got, err = o.Open(got, sealed, i == chunks-1); err != nil {
					t.Fatalf("size %d, chunk %d: %v", size, i, err)
				}
			}
			if !bytes.Equal(got, pt[first*ChunkSize:]) {
				t.Fatalf("size %d from chunk %d: wrong plaintext", size, first)
			}
		}
	}
}

// TestChunkOpenerRejects: every way of presenting a chunk other than as
// sealed fails with ErrAuthentication and returns dst unchanged.
func TestChunkOpenerRejects(t *testing.T) {
	key := testKey(4)
	pt := bytes.Repeat([]byte("x"), 2*ChunkSize+10)
	body := sealSlots(t, key, pt)
	c0, c1, c2 := body[:SealedChunkSize], body[SealedChunkSize:2*SealedChunkSize], body[2*SealedChunkSize:]
	flip := bytes.Clone(c1)
	flip[100] ^= 1
	cases := map[string]struct {
		first  uint64
		sealed []byte
		last   bool
		key    Key
	}{
		"middle chunk as last":    {1, c1, true, key},
		"last chunk as middle":    {2, c2, false, key},
		"chunk at another index":  {0, c1, false, key},
		"modified chunk":          {1, flip, false, key},
		"truncated middle chunk":  {1, c1[:len(c1)-1], false, key},
		"truncated last chunk":    {2, c2[:len(c2)-1], true, key},
		"shorter than a tag":      {2, c2[:Overhead-1], true, key},
		"longer than a chunk":     {0, append(bytes.Clone(c0), 0), false, key},
		"empty last after others": {2, c2[:0], true, key},
		"other key":               {0, c0, false, testKey(5)},
	}
	for name, tc := range cases {
		o, err := NewChunkOpener(tc.key, tc.first)
		if err != nil {
			t.Fatal(err)
		}
		dst := []byte("kept")
		out, err := o.Open(dst, tc.sealed, tc.last)
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: got %v, want ErrAuthentication", name, err)
		}
		if string(out) != "kept" || o.Chunk() != tc.first {
			t.Errorf("%s: dst %q, next chunk %d after a failure", name, out, o.Chunk())
		}
	}
}

// TestChunkSealerRejects: chunks the format cannot hold are refused.
func TestChunkSealerRejects(t *testing.T) {
	s, err := NewChunkSealer(testKey(6))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, SealedChunkSize)
	for name, tc := range map[string]struct {
		buf  []byte
		n    int
		last bool
	}{
		"short middle chunk": {buf, ChunkSize - 1, false},
		"oversized chunk":    {make([]byte, SealedChunkSize+1), ChunkSize + 1, true},
		"no room for tag":    {buf[:ChunkSize:ChunkSize], ChunkSize, false},
	} {
		if _, err := s.Seal(tc.buf, tc.n, tc.last); err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
	if _, err := s.Seal(buf, ChunkSize, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(buf, 0, true); err == nil {
		t.Error("sealed an empty last chunk after a full one")
	}
}

// FuzzChunkOpener: arbitrary bytes never open as a chunk and never panic.
func FuzzChunkOpener(f *testing.F) {
	body := sealSlots(&testing.T{}, testKey(7), []byte("hello"))
	f.Add(body, true, uint64(0))
	f.Add(body[:5], false, uint64(1))
	f.Fuzz(func(t *testing.T, sealed []byte, last bool, first uint64) {
		o, err := NewChunkOpener(testKey(8), first%(MaxSize/ChunkSize+1))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := o.Open(nil, sealed, last); err == nil {
			t.Fatalf("random bytes opened as %q", out)
		}
	})
}
