package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDeviceIDText(t *testing.T) {
	d, err := NewDeviceID(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	if d.IsZero() {
		t.Fatal("zero id")
	}
	s := d.String()
	if len(s) != 26 {
		t.Fatalf("text form %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseDeviceID(in)
		if err != nil || got != d {
			t.Fatalf("ParseDeviceID(%q) = %v, %v", in, got, err)
		}
	}
	// The last character carries two padding bits; setting them must be refused.
	last := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", s[25])
	alt := s[:25] + string("abcdefghijklmnopqrstuvwxyz234567"[last^1])
	if _, err := ParseDeviceID(alt); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("non-canonical id %q accepted: %v", alt, err)
	}
	for _, bad := range []string{"", s[:25], s + "a", "0" + s[1:], "\u212a" + s[1:]} {
		if _, err := ParseDeviceID(bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseDeviceID(%q) = %v", bad, err)
		}
	}
	got, err := DeviceIDFromBytes(d[:])
	if err != nil || got != d {
		t.Fatal("DeviceIDFromBytes round trip")
	}
	if _, err := DeviceIDFromBytes(d[:15]); !errors.Is(err, ErrInvalidID) {
		t.Fatal("short raw id accepted")
	}
}

func TestNewDeviceIDSkipsZero(t *testing.T) {
	src := bytes.NewReader(append(make([]byte, DeviceIDSize), bytes.Repeat([]byte{7}, DeviceIDSize)...))
	d, err := NewDeviceID(src)
	if err != nil || d != (DeviceID{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}) {
		t.Fatalf("NewDeviceID = %v, %v", d, err)
	}
	if _, err := NewDeviceID(bytes.NewReader(nil)); err == nil {
		t.Fatal("empty randomness accepted")
	}
}

func TestParseAccountID(t *testing.T) {
	id := testAccount(t, 5).ID()
	got, err := ParseAccountID(strings.ToUpper(string(id)))
	if err != nil || got != id {
		t.Fatalf("ParseAccountID = %v, %v", got, err)
	}
	for _, bad := range []string{"", string(id[:31]), string(id) + "a", "1" + string(id[1:])} {
		if _, err := ParseAccountID(bad); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseAccountID(%q) = %v", bad, err)
		}
	}
	if id.Matches(testAccount(t, 6).Public()) || id.Matches(nil) {
		t.Fatal("Matches accepts a foreign key")
	}
}

func FuzzParseDeviceID(f *testing.F) {
	f.Add("aebagbafaydqqcikbmga2dqpca")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeviceID(s)
		if err != nil {
			return
		}
		if d.String() != asciiLower(s) {
			t.Fatalf("accepted %q, canonical form %q", s, d.String())
		}
	})
}
