package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"strconv"
	"strings"
)

// Safety number construction (version 1). For each account public key:
//
//	h_0 = SHA-512("Parley safety number" || uint16 version || account ID text || public key)
//	h_i = SHA-512(h_{i-1} || public key)          for i = 1..5200
//	fingerprint = h_5200
//
// The iterations make a brute-force search for a key whose number resembles
// a victim's 5200 times slower (the same work factor as Signal's
// fingerprints). The account ID is included so the number is bound to the
// self-certifying ID as well as the key.
//
// Each fingerprint gives 30 digits: its first 30 bytes are read as six
// big-endian 40-bit integers, each reduced modulo 100000 and written as 5
// digits (the bias of the reduction is below 10^-7). The two halves are
// ordered by fingerprint bytes, so both people see the same 60 digits,
// printed in 12 groups of 5.
const (
	safetyLabel      = "Parley safety number"
	safetyVersion    = 1
	safetyIterations = 5200
	// safetyQRFingerprintLen is how much of each fingerprint the QR payload
	// carries: 256 bits, far beyond what 30 digits (~100 bits) compare.
	safetyQRFingerprintLen = 32
)

// SafetyQRPayloadSize is the size of a [SafetyQRPayload]: a version byte and
// two 32-byte fingerprints.
const SafetyQRPayloadSize = 1 + 2*safetyQRFingerprintLen

// safetyFingerprint computes the iterated fingerprint of one account key.
func safetyFingerprint(pub ed25519.PublicKey) [sha512.Size]byte {
	id := AccountIDFromKey(pub)
	buf := make([]byte, 0, len(safetyLabel)+2+len(id)+len(pub))
	buf = append(buf, safetyLabel...)
	buf = binary.BigEndian.AppendUint16(buf, safetyVersion)
	buf = append(buf, id...)
	buf = append(buf, pub...)
	h := sha512.Sum512(buf)
	step := make([]byte, sha512.Size+len(pub))
	copy(step[sha512.Size:], pub)
	for range safetyIterations {
		copy(step, h[:])
		h = sha512.Sum512(step)
	}
	return h
}

// orderedFingerprints returns the fingerprints of a and b, smaller first.
func orderedFingerprints(a, b ed25519.PublicKey) (lo, hi [sha512.Size]byte) {
	fa, fb := safetyFingerprint(a), safetyFingerprint(b)
	if bytes.Compare(fa[:], fb[:]) > 0 {
		fa, fb = fb, fa
	}
	return fa, fb
}

// appendSafetyDigits appends the 30 digits of one fingerprint, in groups of
// 5 separated by spaces.
func appendSafetyDigits(dst []byte, fp *[sha512.Size]byte) []byte {
	for i := range 6 {
		chunk := fp[i*5 : i*5+5]
		var v uint64
		for _, c := range chunk {
			v = v<<8 | uint64(c)
		}
		if len(dst) > 0 {
			dst = append(dst, ' ')
		}
		s := strconv.FormatUint(v%100000, 10)
		dst = append(dst, strings.Repeat("0", 5-len(s))...)
		dst = append(dst, s...)
	}
	return dst
}

// SafetyNumber returns the safety number of two accounts: 60 decimal digits
// in 12 groups of 5, separated by spaces. It is symmetric: SafetyNumber(a, b)
// equals SafetyNumber(b, a), so two people compare the same digits. It
// covers every device of both accounts, because device certificates are
// signed by the account keys.
func SafetyNumber(a, b ed25519.PublicKey) string {
	lo, hi := orderedFingerprints(a, b)
	out := make([]byte, 0, 12*6)
	out = appendSafetyDigits(out, &lo)
	out = appendSafetyDigits(out, &hi)
	return string(out)
}

// SafetyQRPayload returns the bytes to show as a QR code for comparing the
// accounts a and b by scanning: a version byte and 32 bytes of each
// account's fingerprint, in the same order as [SafetyNumber]. It is
// symmetric, so the scanner checks it with [VerifySafetyQR] against its own
// view of the two keys.
func SafetyQRPayload(a, b ed25519.PublicKey) []byte {
	lo, hi := orderedFingerprints(a, b)
	out := make([]byte, 0, SafetyQRPayloadSize)
	out = append(out, safetyVersion)
	out = append(out, lo[:safetyQRFingerprintLen]...)
	return append(out, hi[:safetyQRFingerprintLen]...)
}

// VerifySafetyQR reports whether a scanned payload matches the accounts a
// and b, in either order. Any malformed payload is a mismatch.
func VerifySafetyQR(payload []byte, a, b ed25519.PublicKey) bool {
	if len(payload) != SafetyQRPayloadSize || payload[0] != safetyVersion {
		return false
	}
	return subtle.ConstantTimeCompare(payload, SafetyQRPayload(a, b)) == 1
}
