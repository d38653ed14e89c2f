package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// snapshot returns the bytes of every file in dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: %d before, %d after", len(before), len(after))
	}
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Fatalf("%s changed", name)
		}
	}
}

func TestPassphrase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "p")
	s, err := Create(ctx, dir, Options{Passphrase: []byte("correct horse"), KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	c := newChat(t, s, "kept")
	insert(t, s, textMsg(c.ID, 1, newAccount(t), 1, "secret"))
	if has, err := s.HasPassphrase(); err != nil || !has {
		t.Fatalf("HasPassphrase = %v, %v", has, err)
	}
	s.Close()
	before := snapshot(t, dir)

	for _, tc := range []struct {
		pass string
		want error
	}{
		{"", ErrPassphraseRequired},
		{"wrong horse", ErrWrongPassphrase},
		{"correct horse ", ErrWrongPassphrase},
	} {
		if _, err := Open(ctx, dir, Options{Passphrase: []byte(tc.pass)}); !errors.Is(err, tc.want) {
			t.Fatalf("Open with %q: %v, want %v", tc.pass, err, tc.want)
		}
	}
	sameFiles(t, before, snapshot(t, dir))

	// Change the passphrase: the old one stops working, the new one opens
	// the same data, and only profile.key changed.
	s, err = Open(ctx, dir, Options{Passphrase: []byte("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassphrase([]byte("battery staple"), fastKDF); err != nil {
		t.Fatal(err)
	}
	s.Close()
	after := snapshot(t, dir)
	if bytes.Equal(before[KeyFileName], after[KeyFileName]) {
		t.Fatal("profile.key did not change")
	}
	delete(before, KeyFileName)
	delete(after, KeyFileName)
	sameFiles(t, before, after)
	if _, err := Open(ctx, dir, Options{Passphrase: []byte("correct horse")}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase after change: %v", err)
	}
	s, err = Open(ctx, dir, Options{Passphrase: []byte("battery staple")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Message(ctx, msgID(1)); err != nil || string(m.Body) != "secret" {
		t.Fatalf("message after passphrase change: %v, %v", m, err)
	}

	// Remove the passphrase: the key is kept in the clear, mode 0600.
	if err := s.SetPassphrase(nil, KDFParams{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dir, Options{Passphrase: []byte("battery staple")}); !errors.Is(err, ErrNoPassphraseSet) {
		t.Fatalf("passphrase for a profile without one: %v", err)
	}
	s, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if has, err := s.HasPassphrase(); err != nil || has {
		t.Fatalf("HasPassphrase after removal = %v, %v", has, err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile.key mode %v, %v", fi.Mode().Perm(), err)
	}
	if m, err := s.Message(ctx, msgID(1)); err != nil || string(m.Body) != "secret" {
		t.Fatalf("message after passphrase removal: %v, %v", m, err)
	}
}

func TestWrongKeyFile(t *testing.T) {
	ctx := context.Background()
	s1, dir1 := newStore(t)
	s2, dir2 := newStore(t)
	s1.Close()
	s2.Close()
	other, err := os.ReadFile(filepath.Join(dir2, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir1, KeyFileName), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir1, Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another profile's key: %v, want ErrWrongKey", err)
	}
	if err := os.WriteFile(filepath.Join(dir1, KeyFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir1, Options{}); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("Open with a garbage key file: %v, want ErrBadKeyFile", err)
	}
}

func TestKeyFileFormat(t *testing.T) {
	var pk ProfileKey
	copy(pk[:], bytes.Repeat([]byte{7}, ProfileKeySize))
	kf, err := wrapKeyFile(&pk, []byte("pw"), fastKDF, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	enc := kf.marshal()
	if len(enc) != argonFileSize {
		t.Fatalf("wrapped key file is %d bytes, want %d", len(enc), argonFileSize)
	}
	back, err := parseKeyFile(enc)
	if err != nil || back.params != fastKDF {
		t.Fatalf("parse: %v, params %+v", err, back.params)
	}
	got, err := back.unlock([]byte("pw"))
	if err != nil || got != pk {
		t.Fatalf("unlock: %v", err)
	}
	// Raising the recorded parameters without re-wrapping breaks the wrap:
	// the parameters are authenticated.
	tampered := bytes.Clone(enc)
	tampered[keyHeaderSize+3]++ // time
	kf2, err := parseKeyFile(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kf2.unlock([]byte("pw")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("tampered parameters: %v", err)
	}
	for _, bad := range [][]byte{nil, enc[:10], append(bytes.Clone(enc), 0), plainKeyFile(&pk).marshal()[:plainFileSize-1]} {
		if _, err := parseKeyFile(bad); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("parse of %d bytes: %v, want ErrBadKeyFile", len(bad), err)
		}
	}
	huge := bytes.Clone(enc)
	huge[keyHeaderSize+4] = 0xff // memory
	if _, err := parseKeyFile(huge); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("out-of-bounds memory: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func FuzzParseKeyFile(f *testing.F) {
	var pk ProfileKey
	f.Add(plainKeyFile(&pk).marshal())
	kf, err := wrapKeyFile(&pk, []byte("pw"), fastKDF, zeroReader{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kf.marshal())
	f.Add([]byte(keyFileMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := parseKeyFile(data)
		if err != nil {
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("error %v does not match ErrBadKeyFile", err)
			}
			return
		}
		if !bytes.Equal(kf.marshal(), data) {
			t.Fatal("parsed key file does not re-encode to its input")
		}
		if kf.hasPassphrase() && kf.params.MemoryKiB <= 1024 && kf.params.Time <= 2 {
			_, _ = kf.unlock([]byte("pw"))
		}
	})
}
