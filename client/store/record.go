package store

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/identity"
)

// Records are the plaintexts of sealed values that hold more than one field.
// They are encoded with length prefixes (cryptobyte) and start with a version
// byte; decoding rejects unknown versions and trailing bytes. The bytes come
// from the local database, which an attacker with access to the files can
// alter, so decoding never panics and every length is bounded by the input.

const recordVersion = 1

var errRecord = errors.New("malformed record")

// messageContent is the sealed part of a message row.
type messageContent struct {
	sender identity.AccountID
	device identity.DeviceID
	body   []byte
}

func (c *messageContent) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(recordVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.sender)) })
	b.AddBytes(c.device[:])
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.body) })
	return b.Bytes()
}

func parseMessageContent(data []byte) (*messageContent, error) {
	s := cryptobyte.String(data)
	var v uint8
	var sender, body cryptobyte.String
	c := &messageContent{}
	if !s.ReadUint8(&v) || v != recordVersion ||
		!s.ReadUint8LengthPrefixed(&sender) ||
		!s.CopyBytes(c.device[:]) ||
		!s.ReadUint24LengthPrefixed(&body) || !s.Empty() {
		return nil, errRecord
	}
	c.sender = identity.AccountID(sender)
	c.body = []byte(body)
	return c, nil
}

// chatDetails is the sealed part of a conversation row.
type chatDetails struct {
	name    string
	members []identity.AccountID
}

func (d *chatDetails) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(recordVersion)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.name)) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, m := range d.members {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(m)) })
		}
	})
	return b.Bytes()
}

func parseChatDetails(data []byte) (*chatDetails, error) {
	s := cryptobyte.String(data)
	var v uint8
	var name, members cryptobyte.String
	if !s.ReadUint8(&v) || v != recordVersion ||
		!s.ReadUint16LengthPrefixed(&name) ||
		!s.ReadUint24LengthPrefixed(&members) || !s.Empty() {
		return nil, errRecord
	}
	d := &chatDetails{name: string(name)}
	// Each member takes at least one byte, so the loop is bounded by the
	// input's length.
	for !members.Empty() {
		var m cryptobyte.String
		if !members.ReadUint8LengthPrefixed(&m) {
			return nil, errRecord
		}
		d.members = append(d.members, identity.AccountID(m))
	}
	return d, nil
}

// contactRecord is the sealed part of a contact row.
type contactRecord struct {
	account      identity.AccountID
	verified     bool
	safetyNumber string
	displayName  string
}

func (c *contactRecord) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(recordVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.account)) })
	var verified uint8
	if c.verified {
		verified = 1
	}
	b.AddUint8(verified)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.safetyNumber)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.displayName)) })
	return b.Bytes()
}

func parseContactRecord(data []byte) (*contactRecord, error) {
	s := cryptobyte.String(data)
	var v, verified uint8
	var account, safety, name cryptobyte.String
	if !s.ReadUint8(&v) || v != recordVersion ||
		!s.ReadUint8LengthPrefixed(&account) ||
		!s.ReadUint8(&verified) || verified > 1 ||
		!s.ReadUint16LengthPrefixed(&safety) ||
		!s.ReadUint16LengthPrefixed(&name) || !s.Empty() {
		return nil, errRecord
	}
	return &contactRecord{
		account: identity.AccountID(account), verified: verified == 1,
		safetyNumber: string(safety), displayName: string(name),
	}, nil
}
