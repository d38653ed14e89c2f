package store

import (
	"bytes"
	"testing"

	"github.com/parley-im/parley/identity"
)

// FuzzRecords feeds arbitrary bytes to every decoder of sealed-record
// plaintexts: they must not panic, and what they accept must re-encode to
// the same bytes.
func FuzzRecords(f *testing.F) {
	mc := messageContent{sender: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", body: []byte("hello")}
	cd := chatDetails{name: "chat", members: []identity.AccountID{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}
	cr := contactRecord{account: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", verified: true, safetyNumber: "123", displayName: "Bob"}
	for _, m := range []interface{ marshal() ([]byte, error) }{&mc, &cd, &cr} {
		b, err := m.marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := parseMessageContent(data); err == nil {
			if b, err := c.marshal(); err != nil || !bytes.Equal(b, data) {
				t.Fatal("message content does not round-trip")
			}
		}
		if d, err := parseChatDetails(data); err == nil {
			if b, err := d.marshal(); err != nil || !bytes.Equal(b, data) {
				t.Fatal("chat details do not round-trip")
			}
		}
		if c, err := parseContactRecord(data); err == nil {
			if b, err := c.marshal(); err != nil || !bytes.Equal(b, data) {
				t.Fatal("contact record does not round-trip")
			}
		}
	})
}

// FuzzOpenSealed feeds arbitrary bytes to the sealed-value decoder: it must
// refuse them with ErrCorrupt, never panic, and never accept bytes it did
// not seal for that row.
func FuzzOpenSealed(f *testing.F) {
	var pk ProfileKey
	s, err := newSealer(&pk, zeroReader{})
	if err != nil {
		f.Fatal(err)
	}
	ref := rowRef{table: "messages", column: "content", key: []byte("k")}
	good, err := s.seal(ref, []byte("plaintext"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{sealVersion})
	f.Add(make([]byte, sealOverhead))
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := s.open(ref, data)
		if err == nil && (!bytes.Equal(data, good) || string(pt) != "plaintext") {
			t.Fatal("opened a value that was not sealed for this row")
		}
		if _, err := s.open(rowRef{table: "messages", column: "content", key: []byte("other")}, data); err == nil {
			t.Fatal("a value opened under another row's key")
		}
	})
}
