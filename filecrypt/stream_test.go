package filecrypt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

var testSizes = []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17, 4 * ChunkSize}

func testKey(seed byte) Key {
	var k Key
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func plaintext(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}

func encryptWriter(t testing.TB, key Key, pt []byte) []byte {
	var buf bytes.Buffer
	e, err := NewEncrypter(&buf, key)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes exercise the chunk boundary logic.
	for p := pt; len(p) > 0; {
		n := min(len(p), 1+len(p)%7777)
		if _, err := e.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encryptReader(t testing.TB, key Key, pt []byte) []byte {
	r, err := NewEncryptingReader(bytes.NewReader(pt), key)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func decrypt(key Key, ct []byte) ([]byte, error) {
	d, err := NewDecrypter(bytes.NewReader(ct), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(d)
}

func TestRoundTrip(t *testing.T) {
	key := testKey(1)
	for _, n := range testSizes {
		pt := plaintext(n, uint64(n))
		ct := encryptWriter(t, key, pt)
		if ct2 := encryptReader(t, key, pt); !bytes.Equal(ct, ct2) {
			t.Fatalf("size %d: writer and reader produce different ciphertexts", n)
		}
		want, err := CiphertextSize(int64(n))
		if err != nil || int64(len(ct)) != want {
			t.Fatalf("size %d: ciphertext %d bytes, CiphertextSize says %d (%v)", n, len(ct), want, err)
		}
		if p, err := PlaintextSize(int64(len(ct))); err != nil || p != int64(n) {
			t.Fatalf("size %d: PlaintextSize = %d, %v", n, p, err)
		}
		got, err := decrypt(key, ct)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("size %d: round trip mismatch", n)
		}
		if got, err := decryptWriteTo(key, ct); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: WriteTo round trip: %d bytes, %v", n, len(got), err)
		}
	}
}

// decryptWriteTo decrypts through Decrypter.WriteTo.
func decryptWriteTo(key Key, ct []byte) ([]byte, error) {
	d, err := NewDecrypter(bytes.NewReader(ct), key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = d.WriteTo(&buf)
	return buf.Bytes(), err
}

func TestPlaintextSizeRejectsImpossible(t *testing.T) {
	for _, n := range []int64{-1, 0, HeaderSize, HeaderSize + Overhead - 1, HeaderSize + sealedChunkSize + 1, HeaderSize + sealedChunkSize + Overhead} {
		if _, err := PlaintextSize(n); err == nil {
			t.Errorf("PlaintextSize(%d) accepted an impossible size", n)
		}
	}
}

func TestChunkDecrypterFromOffset(t *testing.T) {
	key := testKey(2)
	pt := plaintext(5*ChunkSize+100, 9)
	ct := encryptReader(t, key, pt)
	for first := uint64(0); first <= 5; first++ {
		d, err := NewChunkDecrypter(bytes.NewReader(ct[ChunkOffset(first):]), key, first)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(d)
		if err != nil {
			t.Fatalf("from chunk %d: %v", first, err)
		}
		if !bytes.Equal(got, pt[first*ChunkSize:]) {
			t.Fatalf("from chunk %d: mismatch", first)
		}
	}
	// A range started at the wrong chunk index does not authenticate.
	d, _ := NewChunkDecrypter(bytes.NewReader(ct[ChunkOffset(2):]), key, 1)
	if _, err := io.ReadAll(d); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong chunk index: got %v, want ErrAuthentication", err)
	}
}

// readUntilError returns what a decrypter releases before its error.
func readUntilError(key Key, ct []byte) ([]byte, error) {
	d, err := NewDecrypter(bytes.NewReader(ct), key)
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 1000)
	for {
		n, err := d.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestTamperingDetected(t *testing.T) {
	key := testKey(3)
	pt := plaintext(3*ChunkSize+5, 4)
	ct := encryptReader(t, key, pt)
	c := func(i int) []byte { // sealed chunk i
		start := ChunkOffset(uint64(i))
		end := min(start+sealedChunkSize, int64(len(ct)))
		return ct[start:end]
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	hdr := ct[:HeaderSize]
	other := encryptReader(t, testKey(4), pt)
	cases := map[string][]byte{
		"truncated at chunk boundary": ct[:ChunkOffset(2)],
		"truncated mid chunk":         ct[:ChunkOffset(2)+100],
		"last chunk dropped":          cat(hdr, c(0), c(1), c(2)),
		"trailing byte":               cat(ct, []byte{0}),
		"trailing chunk":              cat(ct, c(1)),
		"swapped chunks":              cat(hdr, c(1), c(0), c(2), c(3)),
		"duplicated chunk":            cat(hdr, c(0), c(0), c(1), c(2), c(3)),
		"spliced from other key":      cat(hdr, c(0), other[ChunkOffset(1):]),
		"empty after header":          hdr,
		"extra empty last chunk":      cat(encryptReader(t, key, pt[:ChunkSize])[:ChunkOffset(1)], make([]byte, Overhead)),
	}
	for i := 0; i < len(ct); i += 4099 {
		if i < HeaderSize {
			continue
		}
		b := bytes.Clone(ct)
		b[i] ^= 0x40
		cases[fmt.Sprintf("bit flip at %d", i)] = b
	}
	for name, b := range cases {
		got, err := readUntilError(key, b)
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: got %v, want ErrAuthentication", name, err)
		}
		if len(got)%ChunkSize != 0 || !bytes.Equal(got, pt[:len(got)]) {
			t.Errorf("%s: released %d bytes that are not whole verified chunks", name, len(got))
		}
		if got, err := decryptWriteTo(key, b); !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrHeader) {
			t.Errorf("%s: WriteTo got %v, want ErrAuthentication", name, err)
		} else if len(got)%ChunkSize != 0 || !bytes.Equal(got, pt[:len(got)]) {
			t.Errorf("%s: WriteTo released %d bytes that are not whole verified chunks", name, len(got))
		}
	}
	if _, err := decrypt(testKey(5), ct); !errors.Is(err, ErrAuthentication) {
		t.Errorf("wrong key: got %v", err)
	}
	bad := bytes.Clone(ct)
	bad[HeaderSize-1] = 2
	if _, err := decrypt(key, bad); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: got %v", err)
	}
	bad[0] = 'X'
	if _, err := decrypt(key, bad); !errors.Is(err, ErrHeader) {
		t.Errorf("bad magic: got %v", err)
	}
	if _, err := decrypt(key, ct[:3]); !errors.Is(err, ErrHeader) {
		t.Errorf("short header: got %v", err)
	}
}

func TestEncrypterClosed(t *testing.T) {
	e, err := NewEncrypter(io.Discard, testKey(6))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Write([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := e.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

func FuzzDecrypter(f *testing.F) {
	key := testKey(7)
	for _, n := range []int{0, 1, 100, ChunkSize + 1} {
		f.Add(encryptReader(f, key, plaintext(n, 1)))
	}
	f.Add([]byte("parleyf\x01"))
	f.Fuzz(func(t *testing.T, ct []byte) {
		got, err := readUntilError(key, ct)
		if err == nil {
			// Only genuine ciphertexts decrypt; they re-encrypt identically.
			if again := encryptReader(t, key, got); !bytes.Equal(again, ct) {
				t.Fatalf("accepted a ciphertext that is not the encryption of its plaintext")
			}
		}
		if len(got)%ChunkSize != 0 && err != nil {
			t.Fatalf("released a partial chunk before an error")
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	h := Header()
	f.Add(h[:])
	f.Add([]byte("parleyf\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseHeader(b)
		if err == nil && (v != Version || !bytes.Equal(b[:HeaderSize], h[:])) {
			t.Fatalf("accepted header %x", b)
		}
	})
}
