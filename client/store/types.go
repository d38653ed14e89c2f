package store

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// b32 is the lowercase, unpadded base32 alphabet Parley uses for textual ids.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// GroupID is an MLS group id: opaque bytes, held as a string so it can be
// compared and used as a map key.
type GroupID string

// MaxGroupIDLen is the longest group id the store accepts.
const MaxGroupIDLen = 255

// Valid reports whether g has an acceptable length (1..MaxGroupIDLen bytes).
func (g GroupID) Valid() bool { return len(g) > 0 && len(g) <= MaxGroupIDLen }

// ChatIDLen is the length of a chat id's text form.
const ChatIDLen = 26

// ChatID names a conversation. It is derived from the conversation's MLS
// group id ([ChatIDFromGroup]), so every device of every member computes the
// same id without talking about it.
type ChatID string

// ChatIDFromGroup derives the chat id of an MLS group: lowercase base32 (no
// padding) of the first 16 bytes of SHA-256("parley/chat-id/v1" || 0 || group).
func ChatIDFromGroup(g GroupID) ChatID {
	h := sha256.New()
	h.Write([]byte("parley/chat-id/v1\x00"))
	h.Write([]byte(g))
	return ChatID(b32.EncodeToString(h.Sum(nil)[:16]))
}

// ParseChatID checks that s is the text form of a chat id. Upper-case input
// is folded to lower case.
func ParseChatID(s string) (ChatID, error) {
	s = strings.ToLower(s)
	raw, err := b32.DecodeString(s)
	if err != nil || len(raw) != 16 || b32.EncodeToString(raw) != s {
		return "", invalidf("chat id must be %d base32 characters", ChatIDLen)
	}
	return ChatID(s), nil
}

// String returns the text form of the id.
func (c ChatID) String() string { return string(c) }

// valid reports whether c is well formed.
func (c ChatID) valid() bool {
	p, err := ParseChatID(string(c))
	return err == nil && p == c
}

// MessageIDSize is the size of a message id in bytes.
const MessageIDSize = 16

// MessageID is chosen at random by the sender of a message. It is unique:
// the store keeps one row per id, which is how the client drops duplicates.
type MessageID [MessageIDSize]byte

// NewMessageID reads a random message id from rand.
func NewMessageID(rand io.Reader) (MessageID, error) {
	var id MessageID
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return id, fmt.Errorf("failed to read randomness for message id: %w", err)
	}
	return id, nil
}

// IsZero reports whether id is the zero id, which means "none".
func (id MessageID) IsZero() bool { return id == MessageID{} }

// String returns the id in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// KeyPackageRef is the MLS reference (hash) of a KeyPackage.
type KeyPackageRef string

// MaxKeyPackageRefLen bounds a key package reference.
const MaxKeyPackageRefLen = 64

// Position orders the messages of a conversation: it is the server's
// sequence number once the server has ordered the message, and a local
// number above every sequence number while it is pending. A message sent by
// this device moves from its pending position to its sequence number when
// the server acknowledges it. The zero Position means "none" in queries.
type Position int64

// pendingBase is the first Position given to pending messages. Server
// sequence numbers must stay below it.
const pendingBase Position = 1 << 62

// MaxSeq is the largest server sequence number the store accepts.
const MaxSeq = uint64(pendingBase) - 1

// Pending reports whether the position is a local, not yet acknowledged one.
func (p Position) Pending() bool { return p >= pendingBase }

// ChatKind says what a conversation is.
type ChatKind uint8

// Conversation kinds.
const (
	ChatDirect ChatKind = 1 // a 1:1 chat: one MLS group holding two accounts' devices
	ChatGroup  ChatKind = 2 // a group chat
	ChatSelf   ChatKind = 3 // the account's private group of its own devices
)

func (k ChatKind) valid() bool { return k >= ChatDirect && k <= ChatSelf }

// String returns the kind's name.
func (k ChatKind) String() string {
	switch k {
	case ChatDirect:
		return "direct"
	case ChatGroup:
		return "group"
	case ChatSelf:
		return "self"
	}
	return fmt.Sprintf("chatkind(%d)", uint8(k))
}

// MessageKind says what a message is. Edit, delete, reaction and receipt
// messages are events: they refer to a Target and change how it is shown.
type MessageKind uint8

// Message kinds.
const (
	KindText     MessageKind = 1
	KindReply    MessageKind = 2 // text replying to Target
	KindEdit     MessageKind = 3 // replaces Target's body
	KindDelete   MessageKind = 4 // deletes Target for everyone
	KindReaction MessageKind = 5 // body is the reaction; empty body withdraws it
	KindFile     MessageKind = 6 // body describes a file (encrypted blob reference)
	KindSystem   MessageKind = 7 // membership changes, renames and such
	KindReceipt  MessageKind = 8 // delivery or read receipt for Target
)

func (k MessageKind) valid() bool { return k >= KindText && k <= KindReceipt }

// IsEvent reports whether the kind changes another message instead of being
// shown on its own.
func (k MessageKind) IsEvent() bool {
	return k == KindEdit || k == KindDelete || k == KindReaction || k == KindReceipt
}

// needsTarget reports whether a message of this kind must name a target.
func (k MessageKind) needsTarget() bool { return k == KindReply || k.IsEvent() }

// String returns the kind's name.
func (k MessageKind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindReply:
		return "reply"
	case KindEdit:
		return "edit"
	case KindDelete:
		return "delete"
	case KindReaction:
		return "reaction"
	case KindFile:
		return "file"
	case KindSystem:
		return "system"
	case KindReceipt:
		return "receipt"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MessageState is the delivery state of a message.
type MessageState uint8

// Message states. Sent, delivered and read only move forward.
const (
	StatePending       MessageState = 1 // ours, not yet acknowledged by the server
	StateSent          MessageState = 2 // ours, ordered by the server
	StateDelivered     MessageState = 3 // ours, a recipient device has it
	StateRead          MessageState = 4 // ours, a recipient has read it
	StateFailed        MessageState = 5 // ours, given up on
	StateReceived      MessageState = 6 // someone else's (or another of our devices')
	StateUndecryptable MessageState = 7 // arrived but could not be decrypted
)

func (s MessageState) valid() bool { return s >= StatePending && s <= StateUndecryptable }

// String returns the state's name.
func (s MessageState) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateSent:
		return "sent"
	case StateDelivered:
		return "delivered"
	case StateRead:
		return "read"
	case StateFailed:
		return "failed"
	case StateReceived:
		return "received"
	case StateUndecryptable:
		return "undecryptable"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// forward reports whether moving from s to next is allowed: sent, delivered
// and read never move backwards; other changes are allowed.
func (s MessageState) forward(next MessageState) bool {
	inOrder := func(x MessageState) bool { return x >= StateSent && x <= StateRead }
	if inOrder(s) && inOrder(next) {
		return next >= s
	}
	return true
}

// Stream names a server-side sequence the client reads from: the device's
// mailbox, or one group's log.
type Stream struct {
	// Group is the group whose log this is; empty for the mailbox.
	Group GroupID
}

// MailboxStream is the device's own mailbox.
var MailboxStream = Stream{}

// GroupStream is the log of group g.
func GroupStream(g GroupID) Stream { return Stream{Group: g} }
