package archive

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// A key record is the small blob stored beside each segment. It wraps the
// segment's data key under one generation of the archive key, together with
// the segment's index entry, so a restoring device lists the key records,
// opens them, sorts the entries and knows which segments to fetch in which
// order. Rotation re-seals only key records.
//
//	version (1) | generation (4, big-endian) | nonce (24) | XChaCha20-Poly1305(archive key, entry)
//
// with label || segment id || generation as associated data. The entry is a
// fixed [indexEntrySize] bytes (so every key record has the same size):
//
//	version (1) | data key (32) | created (8, unix ns) | device (16) | counter (8) | records (4) | zero padding
const (
	keyRecordVersion  = 1
	indexEntryVersion = 1
	indexEntrySize    = 128
	keyRecordLabel    = "parley/archive/key-record/v1"
	keyRecordHeader   = 1 + 4 + chacha20poly1305.NonceSizeX
	// KeyRecordSize is the size of every key record blob.
	KeyRecordSize  = keyRecordHeader + indexEntrySize + chacha20poly1305.Overhead
	indexEntryUsed = 1 + KeySize + 8 + identity.DeviceIDSize + 8 + 4
)

// IndexEntry is what a key record says about its segment, besides the
// data key: where it goes in the order and how many records it holds.
type IndexEntry struct {
	// Created is when the segment's records were first archived (kept by
	// compaction). Segments are restored ordered by (Created, Device,
	// Counter).
	Created time.Time
	// Device is the device that uploaded the segment.
	Device identity.DeviceID
	// Counter is the uploading device's change number at the segment's
	// last record: rising per device.
	Counter uint64
	// Records is the number of records in the segment.
	Records uint32
}

// before orders index entries.
func (e *IndexEntry) before(o *IndexEntry) bool {
	if !e.Created.Equal(o.Created) {
		return e.Created.Before(o.Created)
	}
	if c := compareDevices(e.Device, o.Device); c != 0 {
		return c < 0
	}
	return e.Counter < o.Counter
}

// marshalIndexEntry encodes the plaintext of a key record.
func marshalIndexEntry(key *DataKey, e *IndexEntry) []byte {
	out := make([]byte, 0, indexEntrySize)
	out = append(out, indexEntryVersion)
	out = append(out, key[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(unixNano(e.Created)))
	out = append(out, e.Device[:]...)
	out = binary.BigEndian.AppendUint64(out, e.Counter)
	out = binary.BigEndian.AppendUint32(out, e.Records)
	return append(out, make([]byte, indexEntrySize-len(out))...)
}

// parseIndexEntry decodes the plaintext of a key record strictly.
func parseIndexEntry(data []byte) (DataKey, *IndexEntry, error) {
	var key DataKey
	if len(data) != indexEntrySize {
		return key, nil, malformedf("index entry of %d bytes", len(data))
	}
	s := cryptobyte.String(data)
	var version uint8
	var k, dev []byte
	var created, counter uint64
	var records uint32
	if !s.ReadUint8(&version) || !s.ReadBytes(&k, KeySize) || !s.ReadUint64(&created) ||
		!s.ReadBytes(&dev, identity.DeviceIDSize) || !s.ReadUint64(&counter) || !s.ReadUint32(&records) {
		return key, nil, malformedf("index entry truncated")
	}
	if version != indexEntryVersion {
		return key, nil, malformedf("unknown index entry version %d", version)
	}
	if int64(created) < 0 || records > MaxRecords {
		return key, nil, malformedf("index entry field out of range")
	}
	for _, b := range s {
		if b != 0 {
			return key, nil, malformedf("index entry padding not zero")
		}
	}
	e := &IndexEntry{Created: fromUnixNano(int64(created)), Counter: counter, Records: records}
	copy(e.Device[:], dev)
	copy(key[:], k)
	return key, e, nil
}

func keyRecordAD(id SegmentID, g Generation) []byte {
	ad := append([]byte(keyRecordLabel+"\x00"), id[:]...)
	return binary.BigEndian.AppendUint32(ad, uint32(g))
}

// sealKeyRecord wraps key and e for segment id under the keyring's current
// generation.
func sealKeyRecord(ring *Keyring, id SegmentID, key *DataKey, e *IndexEntry, rand io.Reader) ([]byte, error) {
	g, ak := ring.current()
	defer clear(ak[:])
	return sealKeyRecordWith(g, &ak, id, key, e, rand)
}

func sealKeyRecordWith(g Generation, ak *Key, id SegmentID, key *DataKey, e *IndexEntry, rand io.Reader) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(ak[:])
	if err != nil {
		return nil, fmt.Errorf("failed to set up key record cipher: %w", err)
	}
	out := make([]byte, keyRecordHeader, KeyRecordSize)
	out[0] = keyRecordVersion
	binary.BigEndian.PutUint32(out[1:], uint32(g))
	if _, err := io.ReadFull(rand, out[5:keyRecordHeader]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for key record nonce: %w", err)
	}
	plain := marshalIndexEntry(key, e)
	defer clear(plain)
	return aead.Seal(out, out[5:keyRecordHeader], plain, keyRecordAD(id, g)), nil
}

// keyRecordGeneration reads the generation a key record is wrapped under.
func keyRecordGeneration(blob []byte) (Generation, error) {
	if len(blob) != KeyRecordSize {
		return 0, malformedf("key record of %d bytes", len(blob))
	}
	if blob[0] != keyRecordVersion {
		return 0, malformedf("unknown key record version %d", blob[0])
	}
	return Generation(binary.BigEndian.Uint32(blob[1:5])), nil
}

// openKeyRecord unwraps segment id's key record.
func openKeyRecord(ring *Keyring, id SegmentID, blob []byte) (DataKey, *IndexEntry, error) {
	g, err := keyRecordGeneration(blob)
	if err != nil {
		return DataKey{}, nil, err
	}
	ak, ok := ring.key(g)
	if !ok {
		return DataKey{}, nil, fmt.Errorf("%w: %d", ErrUnknownGeneration, g)
	}
	defer clear(ak[:])
	aead, err := chacha20poly1305.NewX(ak[:])
	if err != nil {
		return DataKey{}, nil, fmt.Errorf("failed to set up key record cipher: %w", err)
	}
	plain, err := aead.Open(nil, blob[5:keyRecordHeader], blob[keyRecordHeader:], keyRecordAD(id, g))
	if err != nil {
		return DataKey{}, nil, fmt.Errorf("%w: key record %s", ErrTampered, id)
	}
	defer clear(plain)
	return parseIndexEntry(plain)
}
