// Package client is the Parley SDK: every front end (the parley command,
// the terminal UI, later a browser) drives a [Client].
//
// # Profiles
//
// A profile is a folder holding the encrypted local store (package
// client/store). [Init] makes a new account in an empty folder: it generates
// the account key and this device's key and certificate, registers with the
// server (solving its proof of work), uploads KeyPackages and creates the
// account's private "self" group. [Open] opens an existing profile. A second
// device joins an existing account with [NewLink] (on the new device) and
// [Client.ApproveLink] (on any existing device); both show the same short
// comparison code before anything secret moves.
//
// # Syncing
//
// [Client.Run] keeps the device online until its context ends: it connects,
// catches up, sends the outbox, and reconnects with backoff when the
// connection drops. One-shot front ends call [Client.Sync] instead, which
// connects if needed, fetches and stores everything pending and sends what
// is queued. Everything that happens is published on the channels returned
// by [Client.Subscribe] as [Event] values: new messages, edits, receipts,
// typing, membership changes and connection state. A front end that shows
// what arrived while it was not running keeps its place in the store's
// change feed with [Client.Unseen] and [Client.MarkSeen].
//
// A device removed from a chat while it was offline learns it on its next
// connection (the chat stays, marked left); added again, the Welcome's
// state replaces the stale one.
//
// # Conversations and messages
//
// Every conversation is one MLS group whose members are devices. 1:1 chats
// ([Client.StartDirect], [Client.SendTo]) hold both accounts' devices;
// groups are made with [Client.CreateGroup] and changed by
// [Client.AddMembers], [Client.RemoveMembers], [Client.Leave],
// [Client.Rename] and [Client.SetAdmins]. Messages are sent with
// [Client.Send], [Client.Reply], [Client.Edit], [Client.Delete] and
// [Client.React]; each gets a unique random 16-byte id and is ordered by
// the server's sequence number. What travels inside MLS is defined by
// package client/content.
//
// Sending is reliable: a message is stored and queued in the outbox first,
// then encrypted and sent when the device is online, with retries and
// backoff; the outbox survives restarts. A commit that loses the race for
// an epoch is discarded, and rebuilt after catching up.
//
// # Privacy
//
// A device that receives messages acknowledges them to the chat with one
// delivery receipt per chat and fetched batch (in chats of up to 32
// accounts), so our message's state goes sent → delivered (every other
// member account has it; in a 1:1 chat, any device of the peer) → read
// (every other member account read it and sends read receipts), reported
// as [EventState] along with sent and failed.
//
// Read receipts, typing notices and last-seen are off until turned on with
// [Client.SetSetting] ([SettingReadReceipts], [SettingTyping],
// [SettingLastSeen]); when on they are MLS application messages padded to
// the same size classes as chat. Disappearing messages are set per chat
// with [Client.SetDisappearing].
//
// A Client is safe for concurrent use.
package client
