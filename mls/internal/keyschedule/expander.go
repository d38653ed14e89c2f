package keyschedule

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"

	"github.com/parley-im/parley/mls/internal/suite"
)

// expander derives several ExpandWithLabel outputs of at most Nh bytes from
// one secret, keying HMAC once. For such lengths HKDF-Expand is a single
// HMAC(secret, info || 0x01), so one keyed HMAC serves every label; the
// ratchet and sender-data derivations, three and two per message, are on the
// hot path of every encryption and decryption.
//
// It needs the suite's hash; every supported suite uses SHA-256, and
// [fastExpandOK] checks once per suite, against [suite.Suite.ExpandWithLabel],
// that the shortcut gives the same bytes, falling back to the suite
// otherwise.
type expander struct {
	suite  *suite.Suite
	mac    hash.Hash // nil on the fallback path
	secret []byte    // the secret, on the fallback path only
	buf    []byte
	used   bool // mac needs a Reset before the next output
	sum    [sha256.Size]byte
}

const labelPrefix = "MLS 1.0 "

var fastExpand sync.Map // suite.ID -> bool

// fastExpandOK reports whether the HMAC-SHA-256 shortcut matches the suite's
// own ExpandWithLabel.
func fastExpandOK(s *suite.Suite) bool {
	if v, ok := fastExpand.Load(s.ID()); ok {
		return v.(bool)
	}
	ok := s.HashSize() == sha256.Size
	if ok {
		secret := bytes.Repeat([]byte{0x5a}, s.HashSize())
		want, err := s.ExpandWithLabel(secret, "check", []byte("context"), s.HashSize())
		x := expander{suite: s, mac: hmac.New(sha256.New, secret)}
		got, xerr := x.expand("check", []byte("context"), s.HashSize())
		ok = err == nil && xerr == nil && bytes.Equal(got, want)
	}
	fastExpand.Store(s.ID(), ok)
	return ok
}

func newExpander(s *suite.Suite, secret []byte) *expander {
	x := &expander{suite: s}
	if fastExpandOK(s) {
		x.mac = hmac.New(sha256.New, secret)
	} else {
		x.secret = append([]byte(nil), secret...)
	}
	return x
}

// erase drops the expander's copy of the secret. (HMAC's internal pads
// cannot be cleared; they become garbage with the expander.)
func (x *expander) erase() {
	clear(x.secret)
	clear(x.buf)
	x.secret, x.mac = nil, nil
}

// appendVarint appends an MLS variable-length integer below 2^14.
func appendVarint(b []byte, v int) []byte {
	if v < 1<<6 {
		return append(b, byte(v))
	}
	return append(b, byte(v>>8)|0x40, byte(v))
}

// maxFastContext bounds the contexts the shortcut encodes itself.
const maxFastContext = 1 << 10

// expand returns ExpandWithLabel(secret, label, context, length) for length
// at most Nh.
func (x *expander) expand(label string, context []byte, length int) ([]byte, error) {
	if x.mac == nil || length > sha256.Size || len(context) > maxFastContext {
		if x.mac != nil {
			return nil, errors.New("mls: expander used beyond its bounds")
		}
		return x.suite.ExpandWithLabel(x.secret, label, context, length)
	}
	info := x.buf[:0]
	info = append(info, byte(length>>8), byte(length))
	info = appendVarint(info, len(labelPrefix)+len(label))
	info = append(info, labelPrefix...)
	info = append(info, label...)
	info = appendVarint(info, len(context))
	info = append(info, context...)
	info = append(info, 1)
	x.buf = info[:0]
	if x.used {
		x.mac.Reset()
	}
	x.used = true
	x.mac.Write(info)
	out := make([]byte, length)
	copy(out, x.mac.Sum(x.sum[:0]))
	clear(x.sum[:])
	return out, nil
}
