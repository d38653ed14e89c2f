package archive

import (
	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/cryptobyte"
)

// RecoverySlotSize is the size of a recovery bundle's slot id on the server.
const RecoverySlotSize = 32

// recoveryInfoVersion is the version byte of an encoded [RecoveryInfo].
const recoveryInfoVersion = 1

// maxRecoveryPublicKey bounds the public key an encoded [RecoveryInfo]
// carries.
const maxRecoveryPublicKey = 4 << 10

// RecoveryInfo is what every device of an account keeps about its recovery
// key: enough to re-seal the recovery bundle after an archive key rotation
// and to recognise the recovery device, nothing that opens the bundle. It
// is shared as account data; the recovery key itself is shown once and
// erased.
//
//	version (1) | slot (32) | recovery device (16) | public key (2-byte length + bytes)
type RecoveryInfo struct {
	// PublicKey seals the bundle.
	PublicKey *RecoveryPublicKey
	// Slot names the bundle's place on the server (derived from the
	// recovery key, so a fresh device knowing only the words finds it).
	Slot [RecoverySlotSize]byte
	// Device is the account's recovery device (derived from the recovery
	// key; registered with the server, asleep until the words are used).
	Device identity.DeviceID
}

// MarshalBinary encodes the info.
func (i *RecoveryInfo) MarshalBinary() ([]byte, error) {
	if i.PublicKey == nil {
		return nil, invalidf("recovery info without a public key")
	}
	var b cryptobyte.Builder
	b.AddUint8(recoveryInfoVersion)
	b.AddBytes(i.Slot[:])
	b.AddBytes(i.Device[:])
	b.AddUint16LengthPrefixed(func(p *cryptobyte.Builder) { p.AddBytes(i.PublicKey.Bytes()) })
	return b.Bytes()
}

// ParseRecoveryInfo reads info written by [RecoveryInfo.MarshalBinary]. It
// rejects unknown versions, a zero device, a public key that does not
// decode and trailing bytes.
func ParseRecoveryInfo(data []byte) (*RecoveryInfo, error) {
	s := cryptobyte.String(data)
	var version uint8
	var slot, dev []byte
	var pub cryptobyte.String
	if !s.ReadUint8(&version) {
		return nil, malformedf("recovery info truncated")
	}
	if version != recoveryInfoVersion {
		return nil, malformedf("unknown recovery info version %d", version)
	}
	if !s.ReadBytes(&slot, RecoverySlotSize) || !s.ReadBytes(&dev, identity.DeviceIDSize) || !s.ReadUint16LengthPrefixed(&pub) {
		return nil, malformedf("recovery info truncated")
	}
	if !s.Empty() {
		return nil, malformedf("trailing bytes after recovery info")
	}
	if len(pub) > maxRecoveryPublicKey {
		return nil, malformedf("recovery public key of %d bytes", len(pub))
	}
	d, err := identity.DeviceIDFromBytes(dev)
	if err != nil || d.IsZero() {
		return nil, malformedf("recovery info device")
	}
	pk, err := ParseRecoveryPublicKey(pub)
	if err != nil {
		return nil, err
	}
	info := &RecoveryInfo{PublicKey: pk, Device: d}
	copy(info.Slot[:], slot)
	return info, nil
}
