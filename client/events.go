package client

import (
	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// ConnState is the connection state of a running client.
type ConnState uint8

// Connection states.
const (
	Offline      ConnState = iota // not running, or given up
	Connecting                    // first attempt
	Online                        // connected and authenticated
	Reconnecting                  // lost the connection, retrying with backoff
)

// String returns the state's name.
func (s ConnState) String() string {
	switch s {
	case Online:
		return "online"
	case Connecting:
		return "connecting"
	case Reconnecting:
		return "reconnecting"
	}
	return "offline"
}

// EventKind says what an [Event] reports.
type EventKind uint8

// Event kinds.
const (
	// EventMessage: a new message (Message set), ours or someone else's.
	EventMessage EventKind = iota + 1
	// EventUpdate: a message changed (edit, delete, reaction, state);
	// Message is the event message, Target the message it changed.
	EventUpdate
	// EventReceipt: Sender read Target.
	EventReceipt
	// EventTyping: Sender started (Typing true) or stopped typing.
	EventTyping
	// EventMembership: members joined or left, the chat was renamed, or
	// this account joined or left the chat.
	EventMembership
	// EventConnection: the connection state changed, or queued items
	// were sent (State, Queued).
	EventConnection
	// EventUndecryptable: a message could not be decrypted (a bug).
	EventUndecryptable
	// EventPolicy: a member did something the group's rules forbid (for
	// example a non-admin added someone); Text says what.
	EventPolicy
	// EventLastSeen: Sender was active at Message.SentAt.
	EventLastSeen
	// EventAccountData: another device of this account shared account
	// data (Text is its name; read it with [Client.AccountData]).
	EventAccountData
	// EventState: the delivery state of our message Target changed to
	// MessageState (sent, delivered, read or failed; see
	// [store.MessageState]). Sender is the account whose receipt caused
	// it, if any.
	EventState
)

// Event is one notification from a [Client].
type Event struct {
	Kind EventKind
	Chat ChatID
	// Message is the message concerned, if any.
	Message *Message
	// Target is the message an update or receipt refers to.
	Target MessageID
	// Sender is the account that caused the event.
	Sender identity.AccountID
	// Typing is set for EventTyping.
	Typing bool
	// State and Queued describe the connection (EventConnection): Queued is
	// how many items wait in the outbox.
	State  ConnState
	Queued int
	// MessageState is the new state of Target (EventState).
	MessageState store.MessageState
	// Text is a short human description (membership changes, policy).
	Text string
	// File describes the file of a file message (Message of kind
	// store.KindFile); nil otherwise. Fetch it with GetFile.
	File *File
	// Restore is the progress of a history restore ([EventHistoryRestore]).
	Restore *archive.Progress
}

// Subscribe returns a channel of events and a function that ends the
// subscription. The channel has room for buf events (at least 64); if a
// subscriber falls that far behind, further events to it are dropped
// rather than blocking sync; everything stays in the store.
func (c *Client) Subscribe(buf int) (<-chan Event, func()) {
	buf = max(buf, 64)
	ch := make(chan Event, buf)
	c.subsMu.Lock()
	select {
	case <-c.closed:
		close(ch)
		c.subsMu.Unlock()
		return ch, func() {}
	default:
	}
	id := c.nextSub
	c.nextSub++
	c.subs[id] = ch
	c.subsMu.Unlock()
	return ch, func() {
		c.subsMu.Lock()
		if s, ok := c.subs[id]; ok {
			close(s)
			delete(c.subs, id)
		}
		c.subsMu.Unlock()
	}
}

func (c *Client) emit(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for _, ev := range evs {
		if ev.File == nil && ev.Message != nil {
			if f, err := FileOf(ev.Message); err == nil {
				ev.File = &f
			}
		}
		for _, ch := range c.subs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}
