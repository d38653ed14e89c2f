// Package mls implements the Messaging Layer Security protocol (RFC 9420):
// end-to-end encrypted groups whose members agree on a shared secret that
// changes with every membership change.
//
// # Using it
//
// Every member has a [Signer] (its signature key) and a [Credential] (the
// identity bytes the application vouches for; Parley puts a device
// certificate there). A [Config] says which cipher suite to use and how the
// group behaves (randomness, clock, out-of-order tolerance, padding); its
// CredentialValidator decides which credentials are acceptable.
//
// To be added by others, a client publishes KeyPackages made with
// [NewKeyPackage] and keeps the private [KeyPackageBundle] until one is used.
//
// A group starts with [Create]. Members are added, removed or refreshed by
// proposals ([Group.ProposeAdd], [Group.ProposeRemove], [Group.ProposeUpdate],
// ...) that a [Group.Commit] turns into a new epoch. Commit returns the
// message for the group, and a Welcome for new members; the new epoch takes
// effect only when the application calls [Group.MergePendingCommit], after the
// delivery service accepted the commit ([Group.ClearPendingCommit] discards
// it). New members call [Join] with the Welcome; a client that is not a
// member can join by itself from a GroupInfo with [JoinExternal].
//
// Everything a group receives goes to [Group.Process]: application messages,
// proposals and commits, from members or from external senders. Application
// data is sent with [Group.Encrypt]. [Group.Export] derives secrets for the
// application, and [Group.EpochAuthenticator] a value members can compare to
// detect a split. Our own proposals and pending commit, echoed back by the
// delivery service, are recognised; our own application messages are not
// (their keys are erased once sent).
//
// Parties outside the group send proposals with [ExternalSenderProposal]
// (when listed in GroupOptions.ExternalSenders) or ask to be added with
// [NewMemberProposal]. [ParseGroupInfo] shows them a group's members and
// settings from a verified GroupInfo.
//
// A group's context extensions are set with [GroupOptions] (structured
// fields, or raw [Extension] values passed through verbatim) and read with
// [Group.Extensions]. A committed ReInit proposal closes the group:
// [Group.ReInitParams] tells every member the suite of the successor to
// make key packages for, and one member creates it with [Group.ReInit].
// [Group.Branch] starts a subgroup. Members join both with [Join], passing
// the old group in JoinOptions.Resume.
//
// # Promises
//
// Every MUST-level check of RFC 9420 is applied to key packages, leaf nodes,
// trees, proposal lists, commits and Welcome messages. A message that is
// rejected leaves the group exactly as it was: the error is returned and
// nothing else changed. Errors can be tested with [errors.Is] against the
// sentinels of this package (for example [ErrWrongEpoch] or
// [ErrInvalidSignature]).
//
// Application messages may arrive out of order within an epoch (up to
// Config.MaxSkip generations ahead) and up to Config.EpochGrace epochs late;
// keys are erased once used. The whole state is serialised with
// [Group.Marshal] and restored with [Unmarshal]; the encoding is versioned.
//
// A Group is not safe for concurrent use: callers serialise access to it.
package mls
