package mls

import (
	"errors"
	"fmt"
)

// Errors callers can branch on with [errors.Is]. Returned errors wrap one of
// these and say what exactly failed.
var (
	// ErrUnsupported reports a cipher suite, version, credential or
	// extension this package or the group does not support.
	ErrUnsupported = errors.New("mls: unsupported")
	// ErrMalformed reports bytes that do not decode as the expected
	// structure.
	ErrMalformed = errors.New("mls: malformed message")
	// ErrWrongGroup reports a message for another group.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrWrongEpoch reports a message for an epoch the group cannot
	// process (in the future, or older than the grace period).
	ErrWrongEpoch = errors.New("mls: message for the wrong epoch")
	// ErrInvalidSignature reports a signature that does not verify.
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrInvalidMAC reports a membership tag or confirmation tag that does
	// not verify.
	ErrInvalidMAC = errors.New("mls: invalid membership or confirmation tag")
	// ErrDecrypt reports a ciphertext that does not decrypt.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrUnknownMember reports a sender or referenced leaf that is not a
	// member of the group.
	ErrUnknownMember = errors.New("mls: unknown member")
	// ErrInvalidProposal reports a proposal that is invalid on its own.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrInvalidProposalList reports a list of committed proposals that
	// breaks RFC 9420, Section 12.2.
	ErrInvalidProposalList = errors.New("mls: invalid proposal list")
	// ErrUnknownProposal reports a commit referring to a proposal the group
	// has not received.
	ErrUnknownProposal = errors.New("mls: unknown proposal reference")
	// ErrInvalidCommit reports a commit that breaks RFC 9420, Section 12.4.
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrInvalidLeafNode reports a leaf node that fails validation
	// (RFC 9420, Section 7.3).
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrInvalidKeyPackage reports a key package that fails validation
	// (RFC 9420, Section 10.1).
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
	// ErrInvalidTree reports a ratchet tree that fails validation.
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrInvalidWelcome reports a Welcome that cannot be used to join.
	ErrInvalidWelcome = errors.New("mls: invalid welcome")
	// ErrInvalidGroupInfo reports a GroupInfo that fails validation.
	ErrInvalidGroupInfo = errors.New("mls: invalid group info")
	// ErrCredentialRejected reports a credential the application's
	// CredentialValidator refused.
	ErrCredentialRejected = errors.New("mls: credential rejected")
	// ErrMissingPSK reports a pre-shared key the group does not have.
	ErrMissingPSK = errors.New("mls: pre-shared key not available")
	// ErrPendingCommit reports an operation that is not allowed while a
	// commit of ours is pending, or a merge with no pending commit.
	ErrPendingCommit = errors.New("mls: pending commit state")
	// ErrPendingProposals reports an attempt to send application data
	// while proposals are waiting to be committed.
	ErrPendingProposals = errors.New("mls: proposals must be committed first")
	// ErrInactive reports use of a group we were removed from, or that was
	// reinitialised.
	ErrInactive = errors.New("mls: group is no longer active")
	// ErrReplay reports an application message whose key was already used
	// or is outside the out-of-order window.
	ErrReplay = errors.New("mls: message key already used or out of window")
	// ErrInvalidState reports serialised state that cannot be restored.
	ErrInvalidState = errors.New("mls: invalid serialised state")
)

// wrapf returns an error wrapping sentinel with a formatted explanation.
func wrapf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
