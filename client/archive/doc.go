// Package archive is Parley's cloud history: an account's message history
// stored on its server as ciphertext the server cannot read, so a new or
// restored device gets the whole history.
//
// # Keys
//
// Each account has an archive key ([Key], 256 bits) shared by its devices
// (device link, self group, recovery bundle), held in a [Keyring] of
// generations. Every segment has its own random [DataKey]; the data key is
// stored wrapped by the archive key in the segment's small key record,
// beside the segment's index entry ([IndexEntry]). [Keyring.Rotate] (after a
// device is revoked) adds a generation; [Archiver.Rewrap] re-seals the key
// records under it without touching the segments.
//
// # Segments
//
// [Archiver.Upload] reads the local store's change feed and packs a
// conversation-agnostic mix of records (messages in their current form,
// events, tombstones, read marks, and [ConversationRecord]s: each chat's
// kind, name, members, admins and timer, or its tombstone) into segments: a strict versioned binary
// encoding, zstd compression, zero padding to a power-of-two size bucket
// from [MinBucket] to [MaxBucket], XChaCha20-Poly1305 under the data key.
// Segment ids are random ([SegmentID]), so names reveal neither
// conversation nor order. [Uploads] decides which device uploads which
// message. A [Remote] stores the blobs.
//
// # Restore, deletion, recovery
//
// [Restore] lists and opens the key records, fetches and decrypts the
// segments in order and merges them into a store in batches, reporting
// [Progress]. Tombstones are archived; [Archiver.Compact] rewrites segments
// that still hold content of deleted or expired messages and deletes the
// old blobs. [SealRecoveryBundle] seals the account key and keyring to a
// [RecoveryPublicKey] (HPKE, ML-KEM-768 + X25519) derived from the
// recovery key, which devices keep in a [RecoveryInfo] instead of the key
// itself; [OpenRecoveryBundle] opens it with the words.
//
// What the server sees: the number of segments and key records, their
// bucket sizes and upload times, and which account they belong to.
package archive
