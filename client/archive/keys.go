package archive

import (
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// KeySize is the size of an archive key and of a segment data key (256 bits).
const KeySize = 32

// Key is one generation of an account's archive key. Every device of the
// account holds it; it wraps the data keys of the account's segments.
type Key [KeySize]byte

// DataKey is the random key that encrypts one segment. It is stored only
// wrapped by an archive [Key], in the segment's key record.
type DataKey [KeySize]byte

// Generation numbers the archive keys of an account, from 1, rising by one
// at every rotation.
type Generation uint32

// MaxGenerations bounds the generations a keyring holds (and decodes).
const MaxGenerations = 64

// keyringVersion is the version byte of an encoded keyring.
const keyringVersion = 1

// Keyring is an account's archive keys by generation. New segments are
// wrapped under the newest generation ([Keyring.Current]); older ones are
// kept until [Archiver.Rewrap] has moved every key record to the newest,
// after which [Keyring.Prune] drops them. A Keyring is safe for concurrent
// use.
type Keyring struct {
	mu   sync.RWMutex
	gens []genKey // ascending by generation, never empty
}

type genKey struct {
	gen Generation
	key Key
}

// NewKeyring makes a keyring with one fresh archive key, generation 1, read
// from rand (crypto/rand.Reader outside tests).
func NewKeyring(rand io.Reader) (*Keyring, error) {
	var k Key
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for archive key: %w", err)
	}
	return &Keyring{gens: []genKey{{gen: 1, key: k}}}, nil
}

// Current returns the newest generation, the one new segments use.
func (r *Keyring) Current() Generation {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gens[len(r.gens)-1].gen
}

// Generations returns the generations held, oldest first.
func (r *Keyring) Generations() []Generation {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Generation, len(r.gens))
	for i, g := range r.gens {
		out[i] = g.gen
	}
	return out
}

// Rotate adds a fresh archive key read from rand as the next generation and
// returns it. Call it when a device of the account is revoked, share the
// keyring with the remaining devices, then run [Archiver.Rewrap].
func (r *Keyring) Rotate(rand io.Reader) (Generation, error) {
	var k Key
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return 0, fmt.Errorf("failed to read randomness for archive key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.gens) >= MaxGenerations {
		return 0, invalidf("keyring holds %d generations; prune it first", MaxGenerations)
	}
	g := r.gens[len(r.gens)-1].gen + 1
	r.gens = append(r.gens, genKey{gen: g, key: k})
	return g, nil
}

// Prune drops the generations older than keep; the current one is always
// kept.
func (r *Keyring) Prune(keep Generation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.gens)-1 && r.gens[i].gen < keep {
		clear(r.gens[i].key[:])
		i++
	}
	r.gens = append([]genKey(nil), r.gens[i:]...)
}

// key returns a copy of generation g's key.
func (r *Keyring) key(g Generation) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.gens {
		if k.gen == g {
			return k.key, true
		}
	}
	return Key{}, false
}

// current returns the newest generation and its key.
func (r *Keyring) current() (Generation, Key) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := r.gens[len(r.gens)-1]
	return k.gen, k.key
}

// MarshalBinary encodes the keyring (secret!) for the device-link transfer,
// the self group and the recovery bundle: a version byte, a count, then each
// generation (4 bytes, big-endian) and its key, oldest first.
func (r *Keyring) MarshalBinary() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var b cryptobyte.Builder
	b.AddUint8(keyringVersion)
	b.AddUint8(uint8(len(r.gens)))
	for _, g := range r.gens {
		b.AddUint32(uint32(g.gen))
		b.AddBytes(g.key[:])
	}
	return b.Bytes()
}

// ParseKeyring reads a keyring written by [Keyring.MarshalBinary]. It
// rejects unknown versions, empty or oversized rings, generations that are
// zero or not strictly rising, and trailing bytes.
func ParseKeyring(data []byte) (*Keyring, error) {
	s := cryptobyte.String(data)
	var version, n uint8
	if !s.ReadUint8(&version) || !s.ReadUint8(&n) {
		return nil, malformedf("keyring truncated")
	}
	if version != keyringVersion {
		return nil, malformedf("unknown keyring version %d", version)
	}
	if n == 0 || n > MaxGenerations {
		return nil, malformedf("keyring with %d generations", n)
	}
	r := &Keyring{gens: make([]genKey, 0, n)}
	for range n {
		var g uint32
		var key []byte
		if !s.ReadUint32(&g) || !s.ReadBytes(&key, KeySize) {
			return nil, malformedf("keyring truncated")
		}
		if g == 0 || (len(r.gens) > 0 && Generation(g) <= r.gens[len(r.gens)-1].gen) {
			return nil, malformedf("keyring generations not rising")
		}
		gk := genKey{gen: Generation(g)}
		copy(gk.key[:], key)
		r.gens = append(r.gens, gk)
	}
	if !s.Empty() {
		return nil, malformedf("trailing bytes after keyring")
	}
	return r, nil
}

// SegmentIDSize is the size of a segment id.
const SegmentIDSize = 32

// SegmentID names a segment. It is random, so it reveals neither the
// conversations in the segment nor its place in the order.
type SegmentID [SegmentIDSize]byte

// NewSegmentID reads a random segment id from rand.
func NewSegmentID(rand io.Reader) (SegmentID, error) {
	var id SegmentID
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return id, fmt.Errorf("failed to read randomness for segment id: %w", err)
	}
	return id, nil
}

// String returns the id in hex.
func (id SegmentID) String() string { return hex.EncodeToString(id[:]) }

// BlobName names an opaque blob held by a [Remote]. An archive holds two
// kinds: "s/" + segment id in hex (the encrypted segment) and "k/" + segment
// id in hex (its key record: the wrapped data key and the segment's index
// entry).
type BlobName string

// Blob name prefixes, for [Remote.List].
const (
	SegmentPrefix   = "s/"
	KeyRecordPrefix = "k/"
)

// SegmentBlob is the name of segment id's blob.
func SegmentBlob(id SegmentID) BlobName { return BlobName(SegmentPrefix + id.String()) }

// KeyRecordBlob is the name of segment id's key record.
func KeyRecordBlob(id SegmentID) BlobName { return BlobName(KeyRecordPrefix + id.String()) }

// parseBlobName returns the segment id of a key record or segment name.
func parseBlobName(n BlobName, prefix string) (SegmentID, bool) {
	var id SegmentID
	s := string(n)
	if len(s) != len(prefix)+2*SegmentIDSize || s[:len(prefix)] != prefix {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s[len(prefix):])); err != nil {
		return id, false
	}
	return id, SegmentBlob(id)[len(SegmentPrefix):] == BlobName(s[len(prefix):])
}
