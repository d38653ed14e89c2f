// Package store is the Parley client's local store: one SQLite file
// (store.db) and one key file (profile.key) in the profile folder.
//
// Open a profile with [Create] (new) or [Open] (existing). Reads are methods
// on [Store]; every write happens in [Store.Update], which runs a function
// with a [Tx] in one durable transaction. [Store.Apply] writes a [Batch] —
// MLS group states, the messages their processing produced and the server
// cursors past them — in one transaction, which is what makes sync crash
// safe.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: when Update (or
// Apply) returns nil, the transaction is on disk and survives a crash or a
// power loss. SQLite has exactly one writer here: one connection, used by
// one Update at a time; reads use a separate pool and do not wait for it.
//
// # Encryption at rest
//
// Everything sensitive is sealed with XChaCha20-Poly1305 under a key derived
// from the 256-bit profile key: message senders and bodies, MLS group
// states, the account key, the device signature key, KeyPackage private
// parts, conversation names and members, outbox payloads, settings and
// contacts. Each sealed value is bound (as associated data) to its table,
// column and row key, so a value moved to another row does not open
// ([ErrCorrupt]). Contacts are keyed by a keyed hash of the account id.
// What stays in the clear is what the store must index, order or sweep:
// chat and message ids, server sequence numbers, kinds, whether a message is
// ours, targets, times, states, group ids and cursors.
//
// The profile key lives in profile.key: wrapped with a passphrase through
// Argon2id (parameters recorded in the file), or in the clear with mode
// 0600 when the user sets no passphrase. [Store.SetPassphrase] re-wraps the
// key; the database is not rewritten.
//
// # Messages
//
// Message ids are unique: inserting a stored id is a no-op that reports
// "already had it", which is the client's dedup of at-least-once delivery.
// Order within a conversation is the server's ([Position]); our pending
// messages sort after everything ordered until the server acknowledges
// them. Edits and deletions for everyone are messages that the store applies
// to their target, which keeps its position; a deleted or expired message
// becomes a tombstone that keeps its id and position (for dedup and for the
// history archive) and loses its content.
package store
