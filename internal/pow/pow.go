// Package pow is the hashcash-style proof of work that Parley servers ask
// for at registration.
//
// The server issues a random [Challenge] and a difficulty in bits. The
// client finds an 8-byte nonce such that SHA-256("parley-pow-v1" ||
// challenge || nonce) starts with at least that many zero bits ([Solve]).
// The server checks it with one hash ([Verify]). Each extra bit doubles the
// expected work; 0 bits accepts any nonce.
package pow

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

const (
	// ChallengeSize is the size of a challenge in bytes.
	ChallengeSize = 32
	// NonceSize is the size of a solution nonce in bytes.
	NonceSize = 8
	// MaxBits is the highest difficulty accepted.
	MaxBits = 40
)

// domain separates these hashes from every other SHA-256 use.
const domain = "parley-pow-v1"

// ErrInvalid is returned by Verify for a wrong or malformed solution.
var ErrInvalid = errors.New("pow: invalid solution")

// Challenge is a server-issued, single-use random challenge.
type Challenge [ChallengeSize]byte

// Nonce is a solution to a challenge.
type Nonce [NonceSize]byte

// NewChallenge reads a fresh challenge from rand.
func NewChallenge(rand io.Reader) (Challenge, error) {
	var c Challenge
	if _, err := io.ReadFull(rand, c[:]); err != nil {
		return c, fmt.Errorf("failed to read randomness for pow challenge: %w", err)
	}
	return c, nil
}

// leadingZeros returns the number of leading zero bits of the hash of
// challenge and nonce.
func leadingZeros(c *Challenge, n *Nonce) int {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(c[:])
	h.Write(n[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	zeros := 0
	for i := 0; i < len(sum); i += 8 {
		w := binary.BigEndian.Uint64(sum[i:])
		zeros += bits.LeadingZeros64(w)
		if w != 0 {
			break
		}
	}
	return zeros
}

// Verify checks that nonce solves challenge at the given difficulty.
func Verify(c Challenge, n Nonce, difficulty int) error {
	if difficulty < 0 || difficulty > MaxBits {
		return fmt.Errorf("%w: difficulty %d out of range", ErrInvalid, difficulty)
	}
	if leadingZeros(&c, &n) < difficulty {
		return ErrInvalid
	}
	return nil
}

// Solve searches for a nonce, trying nonces in counter order. It stops
// with ctx's error when ctx is done.
func Solve(ctx context.Context, c Challenge, difficulty int) (Nonce, error) {
	var n Nonce
	if difficulty < 0 || difficulty > MaxBits {
		return n, fmt.Errorf("failed to solve pow: difficulty %d out of range 0..%d", difficulty, MaxBits)
	}
	for i := uint64(0); ; i++ {
		if i&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return n, fmt.Errorf("failed to solve pow: %w", err)
			}
		}
		binary.BigEndian.PutUint64(n[:], i)
		if leadingZeros(&c, &n) >= difficulty {
			return n, nil
		}
	}
}
