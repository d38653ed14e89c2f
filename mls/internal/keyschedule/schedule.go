package keyschedule

import (
	"errors"
	"fmt"

	"github.com/parley-im/parley/mls/internal/suite"
)

// InitSecret is an epoch's init_secret, the link to the next epoch.
type InitSecret []byte

// CommitSecret is the commit_secret a Commit's UpdatePath contributes
// (RFC 9420, Section 7.4). A nil or empty CommitSecret stands for the all-zero
// vector of a Commit without a path.
type CommitSecret []byte

// PSKSecret is the psk_secret combining a Commit's pre-shared keys (see
// [CombinePSKs]). A nil or empty PSKSecret stands for the all-zero vector.
type PSKSecret []byte

// JoinerSecret is the joiner_secret that a Welcome carries to new members.
type JoinerSecret []byte

// Errors returned by this package.
var (
	ErrInvalidSecret = errors.New("mls: invalid secret")
	ErrInvalidState  = errors.New("mls: invalid key schedule state")
)

// EpochSecrets holds the secrets of one epoch that a group keeps after the
// key schedule ran (RFC 9420, Table 4). The epoch_secret itself and the
// intermediate secrets are erased as soon as these are derived.
//
// Encryption is the root of the epoch's secret tree; [EpochSecrets.NewSecretTree]
// moves it into the tree and erases it here.
type EpochSecrets struct {
	suite *suite.Suite

	SenderData         []byte
	Encryption         []byte
	Exporter           []byte
	External           []byte
	Confirmation       []byte
	Membership         []byte
	Resumption         []byte
	EpochAuthenticator []byte
	// Init is the init_secret of the next epoch.
	Init InitSecret
}

// Suite returns the cipher suite the secrets belong to.
func (e *EpochSecrets) Suite() *suite.Suite { return e.suite }

// zeroOr returns secret, or the all-zero vector of length Nh when it is
// empty.
func zeroOr(s *suite.Suite, secret []byte) []byte {
	if len(secret) == 0 {
		return make([]byte, s.HashSize())
	}
	return secret
}

// NewJoinerSecret derives joiner_secret from the previous epoch's
// init_secret, the commit_secret and the new epoch's encoded GroupContext.
func NewJoinerSecret(s *suite.Suite, init InitSecret, commit CommitSecret, groupContext []byte) (JoinerSecret, error) {
	if len(init) != s.HashSize() {
		return nil, fmt.Errorf("%w: init_secret must be %d bytes", ErrInvalidSecret, s.HashSize())
	}
	if len(commit) != 0 && len(commit) != s.HashSize() {
		return nil, fmt.Errorf("%w: commit_secret must be %d bytes", ErrInvalidSecret, s.HashSize())
	}
	prk := s.Extract(init, zeroOr(s, commit))
	defer clear(prk)
	joiner, err := s.ExpandWithLabel(prk, "joiner", groupContext, s.HashSize())
	if err != nil {
		return nil, fmt.Errorf("failed to derive joiner_secret: %w", err)
	}
	return joiner, nil
}

// memberSecret is KDF.Extract(joiner_secret, psk_secret), the intermediate
// secret from which welcome_secret and epoch_secret are derived.
func memberSecret(s *suite.Suite, joiner JoinerSecret, psk PSKSecret) ([]byte, error) {
	if len(joiner) != s.HashSize() {
		return nil, fmt.Errorf("%w: joiner_secret must be %d bytes", ErrInvalidSecret, s.HashSize())
	}
	if len(psk) != 0 && len(psk) != s.HashSize() {
		return nil, fmt.Errorf("%w: psk_secret must be %d bytes", ErrInvalidSecret, s.HashSize())
	}
	return s.Extract(joiner, zeroOr(s, psk)), nil
}

// WelcomeSecret derives welcome_secret from joiner_secret and psk_secret.
func WelcomeSecret(s *suite.Suite, joiner JoinerSecret, psk PSKSecret) ([]byte, error) {
	member, err := memberSecret(s, joiner, psk)
	if err != nil {
		return nil, err
	}
	defer clear(member)
	welcome, err := s.DeriveSecret(member, "welcome")
	if err != nil {
		return nil, fmt.Errorf("failed to derive welcome_secret: %w", err)
	}
	return welcome, nil
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo (RFC 9420, Section 12.4.3.1).
func WelcomeKeyNonce(s *suite.Suite, joiner JoinerSecret, psk PSKSecret) (key, nonce []byte, err error) {
	welcome, err := WelcomeSecret(s, joiner, psk)
	if err != nil {
		return nil, nil, err
	}
	defer clear(welcome)
	if key, err = s.ExpandWithLabel(welcome, "key", nil, s.KeySize()); err != nil {
		return nil, nil, fmt.Errorf("failed to derive welcome key: %w", err)
	}
	if nonce, err = s.ExpandWithLabel(welcome, "nonce", nil, s.NonceSize()); err != nil {
		clear(key)
		return nil, nil, fmt.Errorf("failed to derive welcome nonce: %w", err)
	}
	return key, nonce, nil
}

// FromJoiner runs the key schedule from joiner_secret, psk_secret and the
// epoch's encoded GroupContext. Members and joiners alike end here.
func FromJoiner(s *suite.Suite, joiner JoinerSecret, psk PSKSecret, groupContext []byte) (*EpochSecrets, error) {
	member, err := memberSecret(s, joiner, psk)
	if err != nil {
		return nil, err
	}
	defer clear(member)
	epoch, err := s.ExpandWithLabel(member, "epoch", groupContext, s.HashSize())
	if err != nil {
		return nil, fmt.Errorf("failed to derive epoch_secret: %w", err)
	}
	defer clear(epoch)
	e := &EpochSecrets{suite: s}
	for _, d := range []struct {
		label string
		out   *[]byte
	}{
		{"sender data", &e.SenderData},
		{"encryption", &e.Encryption},
		{"exporter", &e.Exporter},
		{"external", &e.External},
		{"confirm", &e.Confirmation},
		{"membership", &e.Membership},
		{"resumption", &e.Resumption},
		{"authentication", &e.EpochAuthenticator},
		{"init", (*[]byte)(&e.Init)},
	} {
		if *d.out, err = s.DeriveSecret(epoch, d.label); err != nil {
			e.Erase()
			return nil, fmt.Errorf("failed to derive %s secret: %w", d.label, err)
		}
	}
	return e, nil
}

// NewEpoch runs the whole key schedule for a member: from the previous
// epoch's init_secret, the commit_secret, the psk_secret and the new epoch's
// encoded GroupContext. It returns the joiner_secret too, which the committer
// sends to new members in a Welcome; callers that do not need it should
// clear it.
func NewEpoch(s *suite.Suite, init InitSecret, commit CommitSecret, psk PSKSecret, groupContext []byte) (JoinerSecret, *EpochSecrets, error) {
	joiner, err := NewJoinerSecret(s, init, commit, groupContext)
	if err != nil {
		return nil, nil, err
	}
	e, err := FromJoiner(s, joiner, psk, groupContext)
	if err != nil {
		clear(joiner)
		return nil, nil, err
	}
	return joiner, e, nil
}

// Export is MLS-Exporter(label, context, length) (RFC 9420, Section 8.5).
func (e *EpochSecrets) Export(label string, context []byte, length int) ([]byte, error) {
	if e.suite == nil || len(e.Exporter) == 0 {
		return nil, fmt.Errorf("%w: exporter secret erased", ErrInvalidState)
	}
	derived, err := e.suite.DeriveSecret(e.Exporter, label)
	if err != nil {
		return nil, fmt.Errorf("failed to derive exporter secret: %w", err)
	}
	defer clear(derived)
	out, err := e.suite.ExpandWithLabel(derived, "exported", e.suite.Hash(context), length)
	if err != nil {
		return nil, fmt.Errorf("failed to export secret: %w", err)
	}
	return out, nil
}

// ExternalKeyPair derives the epoch's external HPKE key pair from
// external_secret (RFC 9420, Section 8). The public key goes into the
// external_pub GroupInfo extension; the private key opens ExternalInit
// proposals.
func (e *EpochSecrets) ExternalKeyPair() (priv, pub []byte, err error) {
	if e.suite == nil || len(e.External) == 0 {
		return nil, nil, fmt.Errorf("%w: external secret erased", ErrInvalidState)
	}
	return e.suite.DeriveHPKEKeyPair(e.External)
}

// Erase zeroes every secret held.
func (e *EpochSecrets) Erase() {
	for _, b := range e.fields() {
		clear(*b)
		*b = nil
	}
}

func (e *EpochSecrets) fields() []*[]byte {
	return []*[]byte{&e.SenderData, &e.Encryption, &e.Exporter, &e.External, &e.Confirmation,
		&e.Membership, &e.Resumption, &e.EpochAuthenticator, (*[]byte)(&e.Init)}
}

// externalInitLabel is the HPKE exporter context of external initialisation.
const externalInitLabel = "MLS 1.0 external init secret"

// ExternalInitSend is the joiner's side of external initialisation (RFC 9420,
// Section 8.3): it encapsulates to the group's external_pub and returns the
// kem_output for the ExternalInit proposal and the init_secret to use in
// place of the previous epoch's.
func ExternalInitSend(s *suite.Suite, externalPub []byte) (kemOutput []byte, init InitSecret, err error) {
	kemOutput, secret, err := s.ExportSecretTo(externalPub, nil, externalInitLabel, s.HashSize())
	if err != nil {
		return nil, nil, fmt.Errorf("failed to run external init: %w", err)
	}
	return kemOutput, secret, nil
}

// ExternalInitReceive is the group's side of external initialisation: it
// recovers the init_secret from an ExternalInit proposal's kem_output.
func ExternalInitReceive(s *suite.Suite, externalPriv, kemOutput []byte) (InitSecret, error) {
	secret, err := s.ExportSecretFrom(externalPriv, kemOutput, nil, externalInitLabel, s.HashSize())
	if err != nil {
		return nil, fmt.Errorf("failed to open external init: %w", err)
	}
	return secret, nil
}

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data from sender_data_secret and the content
// ciphertext (RFC 9420, Section 6.3.2).
func SenderDataKeyNonce(s *suite.Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	sample := ciphertext
	if len(sample) > s.HashSize() {
		sample = sample[:s.HashSize()]
	}
	x := newExpander(s, senderDataSecret)
	defer x.erase()
	if key, err = x.expand("key", sample, s.KeySize()); err != nil {
		return nil, nil, fmt.Errorf("failed to derive sender data key: %w", err)
	}
	if nonce, err = x.expand("nonce", sample, s.NonceSize()); err != nil {
		clear(key)
		return nil, nil, fmt.Errorf("failed to derive sender data nonce: %w", err)
	}
	return key, nonce, nil
}
