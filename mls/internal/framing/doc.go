// Package framing authenticates and protects MLS messages (RFC 9420,
// Section 6) and keeps the transcript hashes (Section 8.2).
//
// An [Epoch] gathers what one epoch needs to frame messages: the suite, the
// GroupContext (encoded once), the membership key, the sender data secret
// and the epoch's [keyschedule.SecretTree]. With it, [Epoch.Sign] and
// [Epoch.Verify] handle FramedContent signatures, [Epoch.ProtectPublic] and
// [Epoch.UnprotectPublic] PublicMessages with their membership tags, and
// [Epoch.ProtectPrivate] / [Epoch.UnprotectPrivate] PrivateMessages: sender
// data encryption, the reuse guard and padding. [Epoch.OpenPrivate] decrypts
// and verifies without consuming the ratchet key, for callers that accept or
// reject a message later.
//
// Unprotecting never changes any state unless the message is accepted.
// [ConfirmationTag], [ConfirmedTranscriptHash] and [InterimTranscriptHash]
// implement the commit confirmation and transcript hash chain.
package framing
