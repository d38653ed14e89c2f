// Package identity holds Parley's account and device identities: who a user
// is, which devices speak for them, and how two people check that they see
// the same keys.
//
// An account is an Ed25519 key ([AccountKey]) made on the first device; its
// [AccountID] is derived from the public key, so a server cannot swap keys
// without changing the ID. Each device has its own MLS signature key, bound
// to the account by a [DeviceCertificate] signed by the account key; the
// certificate's encoding is the identity of the device's MLS BasicCredential.
// A device proves itself to a server by signing a challenge with
// [SignAsDevice], checked with [DeviceCertificate.VerifyDeviceSignature].
// A [UsernameClaim] binds an optional username on one server to the account;
// the server can refuse a claim but cannot forge one. Usernames are folded
// and reduced to a skeleton ([FoldUsername], [UsernameSkeleton]) so that
// look-alike names collide.
//
// Two people compare a [SafetyNumber] (60 digits) or scan a
// [SafetyQRPayload]; one number covers every device of both accounts,
// because members verify device certificates.
//
// A 256-bit [RecoveryKey] is written down as 33 words ([RecoveryWords]) and
// read back with [ParseRecoveryWords], which names any unknown word and, by
// the checksum word, catches any single wrong word and any two swapped words.
//
// Every signature made with an account key covers a [Domain] label, so a
// signature made for one purpose is never valid for another. All decoders are
// strict (one encoding per value, no trailing bytes) and never panic; errors
// wrap the sentinels in this package.
package identity
