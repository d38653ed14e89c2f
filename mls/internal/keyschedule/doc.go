// Package keyschedule derives the secrets of an MLS epoch (RFC 9420,
// Sections 8 and 9).
//
// [NewEpoch] runs the key schedule for a member that committed or processed
// a Commit (init_secret, commit_secret, psk_secret, GroupContext); a joiner
// uses the joiner_secret from its Welcome with [WelcomeKeyNonce] and
// [FromJoiner]. Either way the result is an [EpochSecrets], which holds the
// secrets the group keeps for the epoch and offers the exporter, the external
// key pair and the next epoch's init secret. [CombinePSKs] combines pre-shared
// keys, and [ExternalInitSend] / [ExternalInitReceive] run external
// initialisation.
//
// The [SecretTree] hands out the per-sender handshake and application keys.
// It derives leaves lazily, keeps a bounded window of skipped generations for
// out-of-order delivery, and erases every secret once it is consumed, so a
// compromised state cannot decrypt messages that were already read.
//
// Every stateful type has a versioned MarshalBinary / Unmarshal pair for
// persistence. None of the types is safe for concurrent use.
package keyschedule
