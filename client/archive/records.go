package archive

import (
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/cryptobyte"
)

// recordsVersion is the version byte of a segment's plaintext.
const recordsVersion = 1

// Record kinds inside a segment.
const (
	recMessage uint8 = 1 // a message row in its current form (tombstones included)
	recRead    uint8 = 2 // a conversation's read mark
	recConv    uint8 = 3 // a conversation's record or tombstone (conversations.go)
)

// Bounds on what one segment holds; decoding enforces them.
const (
	// MaxRecords is the most records one segment holds.
	MaxRecords = 1 << 16
	// maxIDLen bounds a chat id or account id in a record.
	maxIDLen = 64
)

// flag bits of a message record.
const (
	flagMine    uint8 = 1
	flagDeleted uint8 = 2
	flagsKnown        = flagMine | flagDeleted
)

// Record is one entry of a segment: a message row as the local store holds
// it (an insert, an edited target, an event such as an edit, deletion,
// reaction or receipt, or a tombstone), a conversation's read mark, or a
// conversation's record (its kind, name, members, admins, timer) or
// tombstone.
type Record struct {
	// Message is set for a message record. Position, ReceivedAt and Change
	// are not archived.
	Message *store.Message
	// Read is set for a read-mark record.
	Read *ReadMark
	// Conv is set for a conversation record.
	Conv *ConversationRecord
}

// ReadMark says the user has read Chat up to server sequence number Seq.
type ReadMark struct {
	Chat store.ChatID
	Seq  uint64
}

// appendRecords encodes a segment's plaintext.
func appendRecords(recs []Record) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(recordsVersion)
	b.AddUint32(uint32(len(recs)))
	for _, r := range recs {
		switch {
		case r.Message != nil:
			m := r.Message
			b.AddUint8(recMessage)
			b.AddBytes(m.ID[:])
			addShort(&b, string(m.Chat))
			b.AddUint64(m.Seq)
			b.AddUint8(uint8(m.Kind))
			var f uint8
			if m.Mine {
				f |= flagMine
			}
			if m.Deleted {
				f |= flagDeleted
			}
			b.AddUint8(f)
			b.AddUint8(uint8(m.State))
			b.AddBytes(m.Target[:])
			addShort(&b, string(m.Sender))
			b.AddBytes(m.SenderDevice[:])
			for _, t := range []time.Time{m.SentAt, m.ExpiresAt, m.EditedAt, m.DeletedAt} {
				b.AddUint64(uint64(unixNano(t)))
			}
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Body) })
		case r.Read != nil:
			b.AddUint8(recRead)
			addShort(&b, string(r.Read.Chat))
			b.AddUint64(r.Read.Seq)
		case r.Conv != nil:
			b.AddUint8(recConv)
			if err := appendConversation(&b, r.Conv); err != nil {
				return nil, err
			}
		default:
			return nil, invalidf("empty record")
		}
	}
	return b.Bytes()
}

func addShort(b *cryptobyte.Builder, s string) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

// parseRecords decodes a segment's plaintext strictly: known version and
// kinds, every field in range, no trailing bytes.
func parseRecords(data []byte) ([]Record, error) {
	s := cryptobyte.String(data)
	var version uint8
	var n uint32
	if !s.ReadUint8(&version) || !s.ReadUint32(&n) {
		return nil, malformedf("segment truncated")
	}
	if version != recordsVersion {
		return nil, malformedf("unknown segment version %d", version)
	}
	if n > MaxRecords {
		return nil, malformedf("segment with %d records", n)
	}
	// Each record takes at least 10 bytes; do not trust n for the allocation.
	recs := make([]Record, 0, min(int(n), len(s)/10+1))
	for range n {
		var kind uint8
		if !s.ReadUint8(&kind) {
			return nil, malformedf("segment truncated")
		}
		switch kind {
		case recMessage:
			m, err := parseMessage(&s)
			if err != nil {
				return nil, err
			}
			recs = append(recs, Record{Message: m})
		case recRead:
			var chat cryptobyte.String
			var seq uint64
			if !s.ReadUint8LengthPrefixed(&chat) || !s.ReadUint64(&seq) {
				return nil, malformedf("read mark truncated")
			}
			c, err := parseChat(chat)
			if err != nil {
				return nil, err
			}
			if seq == 0 || seq > store.MaxSeq {
				return nil, malformedf("read mark sequence number out of range")
			}
			recs = append(recs, Record{Read: &ReadMark{Chat: c, Seq: seq}})
		case recConv:
			cr, err := parseConversation(&s)
			if err != nil {
				return nil, err
			}
			recs = append(recs, Record{Conv: cr})
		default:
			return nil, malformedf("unknown record kind %d", kind)
		}
	}
	if !s.Empty() {
		return nil, malformedf("trailing bytes after records")
	}
	return recs, nil
}

func parseChat(raw []byte) (store.ChatID, error) {
	c, err := store.ParseChatID(string(raw))
	if err != nil || string(c) != string(raw) {
		return "", malformedf("bad chat id")
	}
	return c, nil
}

func parseMessage(s *cryptobyte.String) (*store.Message, error) {
	m := &store.Message{}
	var id, target, device []byte
	var chat, sender, body cryptobyte.String
	var kind, flags, state uint8
	var times [4]uint64
	if !s.ReadBytes(&id, store.MessageIDSize) || !s.ReadUint8LengthPrefixed(&chat) || !s.ReadUint64(&m.Seq) ||
		!s.ReadUint8(&kind) || !s.ReadUint8(&flags) || !s.ReadUint8(&state) || !s.ReadBytes(&target, store.MessageIDSize) ||
		!s.ReadUint8LengthPrefixed(&sender) || !s.ReadBytes(&device, identity.DeviceIDSize) ||
		!s.ReadUint64(&times[0]) || !s.ReadUint64(&times[1]) || !s.ReadUint64(&times[2]) || !s.ReadUint64(&times[3]) ||
		!s.ReadUint24LengthPrefixed(&body) {
		return nil, malformedf("message record truncated")
	}
	copy(m.ID[:], id)
	copy(m.Target[:], target)
	copy(m.SenderDevice[:], device)
	var err error
	if m.Chat, err = parseChat(chat); err != nil {
		return nil, err
	}
	m.Kind, m.State = store.MessageKind(kind), store.MessageState(state)
	m.Mine, m.Deleted = flags&flagMine != 0, flags&flagDeleted != 0
	switch {
	case m.ID.IsZero():
		return nil, malformedf("zero message id")
	case m.Seq == 0 || m.Seq > store.MaxSeq:
		return nil, malformedf("message sequence number out of range")
	case kind < uint8(store.KindText) || kind > uint8(store.KindReceipt):
		return nil, malformedf("unknown message kind %d", kind)
	case state < uint8(store.StatePending) || state > uint8(store.StateUndecryptable):
		return nil, malformedf("unknown message state %d", state)
	case flags&^flagsKnown != 0:
		return nil, malformedf("unknown message flags %#x", flags)
	case len(body) > store.MaxBodySize:
		return nil, malformedf("message body over %d bytes", store.MaxBodySize)
	case len(sender) > maxIDLen:
		return nil, malformedf("sender too long")
	case m.Kind != store.KindText && m.Kind != store.KindFile && m.Kind != store.KindSystem && m.Target.IsZero() && !m.Deleted:
		return nil, malformedf("a %s record needs a target", m.Kind)
	case m.Deleted && (len(body) > 0 || len(sender) > 0 || !m.SenderDevice.IsZero() || times[0]|times[1]|times[2] != 0 || times[3] == 0):
		return nil, malformedf("a tombstone carries content")
	}
	for _, t := range times {
		if int64(t) < 0 {
			return nil, malformedf("negative time")
		}
	}
	if len(sender) > 0 {
		a, err := identity.ParseAccountID(string(sender))
		if err != nil || string(a) != string(sender) {
			return nil, malformedf("bad sender account id")
		}
		m.Sender = a
	}
	m.SentAt, m.ExpiresAt = fromUnixNano(int64(times[0])), fromUnixNano(int64(times[1]))
	m.EditedAt, m.DeletedAt = fromUnixNano(int64(times[2])), fromUnixNano(int64(times[3]))
	if len(body) > 0 {
		m.Body = []byte(body)
	}
	return m, nil
}

// archivable returns a copy of m as it is archived: what the restoring
// store needs, without the local fields (position, received time, change).
func archivable(m *store.Message) *store.Message {
	c := &store.Message{
		ID: m.ID, Chat: m.Chat, Seq: m.Seq, Sender: m.Sender, SenderDevice: m.SenderDevice, Mine: m.Mine,
		Kind: m.Kind, Body: m.Body, Target: m.Target, SentAt: m.SentAt, State: m.State,
		ExpiresAt: m.ExpiresAt, EditedAt: m.EditedAt, Deleted: m.Deleted, DeletedAt: m.DeletedAt,
	}
	if c.Deleted {
		tombstoneOf(c, m.DeletedAt)
	}
	return c
}

// tombstoneOf erases m's content, as the store does for a deleted message.
func tombstoneOf(m *store.Message, at time.Time) {
	m.Deleted = true
	m.Sender, m.SenderDevice, m.Body = "", identity.DeviceID{}, nil
	m.SentAt, m.ExpiresAt, m.EditedAt = time.Time{}, time.Time{}, time.Time{}
	if at.IsZero() || at.UnixNano() <= 0 {
		at = time.Unix(0, 1)
	}
	m.DeletedAt = at
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
