package keyschedule

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

// ErrTooManyPSKs is returned when more pre-shared keys are combined than a
// PSKLabel can count.
var ErrTooManyPSKs = errors.New("mls: too many pre-shared keys")

// maxPSKs is the largest count a PSKLabel's uint16 fields can hold.
const maxPSKs = 0xffff

// PSK is one pre-shared key to inject into the key schedule: its encoded
// PreSharedKeyID (RFC 9420, Section 8.4) and the key itself (an external PSK
// or a resumption_psk).
type PSK struct {
	ID     []byte
	Secret []byte
}

// CombinePSKs derives psk_secret from the PSKs in the order the Commit or
// GroupSecrets lists them. With no PSKs the result is the all-zero vector.
func CombinePSKs(s *suite.Suite, psks []PSK) (PSKSecret, error) {
	if len(psks) > maxPSKs {
		return nil, fmt.Errorf("%w: %d", ErrTooManyPSKs, len(psks))
	}
	secret := make([]byte, s.HashSize())
	for i, p := range psks {
		label, err := codec.Marshal(func(b *cryptobyte.Builder) {
			b.AddBytes(p.ID)
			b.AddUint16(uint16(i))
			b.AddUint16(uint16(len(psks)))
		})
		if err != nil {
			clear(secret)
			return nil, fmt.Errorf("failed to encode PSKLabel: %w", err)
		}
		extracted := s.Extract(nil, p.Secret)
		input, err := s.ExpandWithLabel(extracted, "derived psk", label, s.HashSize())
		clear(extracted)
		if err != nil {
			clear(secret)
			return nil, fmt.Errorf("failed to derive psk_input: %w", err)
		}
		next := s.Extract(input, secret)
		clear(input)
		clear(secret)
		secret = next
	}
	return secret, nil
}
