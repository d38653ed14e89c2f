package archive

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/chacha20poly1305"
)

// Segment blob layout:
//
//	version (1 byte) | nonce (24 bytes) | XChaCha20-Poly1305(data key, padded)
//
// with the segment id as associated data (under a label), where padded is
//
//	compressed length (4 bytes, big-endian) | zstd(records) | zero bytes
//
// sized so the whole blob is exactly one of the size buckets.
const (
	segmentVersion  = 1
	segmentOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	segmentLabel    = "parley/archive/segment/v1"
)

// Size buckets: a segment blob is 2^k bytes for MinBucket ≤ 2^k ≤ MaxBucket.
// The server learns only which bucket each segment fills.
const (
	MinBucket = 4 << 10
	MaxBucket = 16 << 20
)

// maxPlain bounds a segment's decompressed records.
const maxPlain = 64 << 20

// bucketFor returns the smallest bucket that holds n bytes.
func bucketFor(n int) (int, bool) {
	for b := MinBucket; b <= MaxBucket; b <<= 1 {
		if n <= b {
			return b, true
		}
	}
	return 0, false
}

func isBucket(n int) bool {
	b, ok := bucketFor(n)
	return ok && b == n
}

var (
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	zstdOnce sync.Once
	zstdErr  error
)

// codecs returns the shared zstd encoder and decoder (both safe for
// concurrent EncodeAll/DecodeAll).
func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zenc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if zstdErr != nil {
			return
		}
		zdec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxPlain), zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxWindow(maxPlain))
	})
	if zstdErr != nil {
		return nil, nil, fmt.Errorf("failed to set up zstd: %w", zstdErr)
	}
	return zenc, zdec, nil
}

func segmentAD(id SegmentID) []byte {
	return append([]byte(segmentLabel+"\x00"), id[:]...)
}

// sealSegment encodes, compresses, pads and encrypts recs as segment id
// under key.
func sealSegment(id SegmentID, key *DataKey, recs []Record, rand io.Reader) ([]byte, error) {
	raw, err := appendRecords(recs)
	if err != nil {
		return nil, err
	}
	if len(raw) > maxPlain {
		return nil, invalidf("segment of %d bytes over %d", len(raw), maxPlain)
	}
	enc, _, err := codecs()
	if err != nil {
		return nil, err
	}
	size, ok := bucketFor(segmentOverhead + 4 + len(raw)/2)
	if !ok {
		size = MaxBucket
	}
	padded := make([]byte, 4, size-segmentOverhead)
	padded = enc.EncodeAll(raw, padded)
	clen := len(padded) - 4
	binary.BigEndian.PutUint32(padded, uint32(clen))
	bucket, ok := bucketFor(segmentOverhead + len(padded))
	if !ok {
		return nil, invalidf("segment compresses to %d bytes, over the largest bucket", len(padded))
	}
	padded = append(padded, make([]byte, bucket-segmentOverhead-len(padded))...)
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("failed to set up segment cipher: %w", err)
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, bucket)
	out[0] = segmentVersion
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for segment nonce: %w", err)
	}
	return aead.Seal(out, out[1:], padded, segmentAD(id)), nil
}

// openSegment decrypts and decodes segment id's blob.
func openSegment(id SegmentID, key *DataKey, blob []byte) ([]Record, error) {
	raw, err := openSegmentRaw(id, key, blob)
	if err != nil {
		return nil, err
	}
	return parseRecords(raw)
}

// openSegmentRaw decrypts segment id's blob and returns the decompressed
// records, not yet decoded.
func openSegmentRaw(id SegmentID, key *DataKey, blob []byte) ([]byte, error) {
	if !isBucket(len(blob)) {
		return nil, malformedf("segment of %d bytes is not a bucket size", len(blob))
	}
	if blob[0] != segmentVersion {
		return nil, malformedf("unknown segment blob version %d", blob[0])
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("failed to set up segment cipher: %w", err)
	}
	nonce := blob[1 : 1+chacha20poly1305.NonceSizeX]
	padded, err := aead.Open(nil, nonce, blob[1+chacha20poly1305.NonceSizeX:], segmentAD(id))
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s", ErrTampered, id)
	}
	return unpad(padded)
}

// unpad checks the padding and decompresses the records.
func unpad(padded []byte) ([]byte, error) {
	if len(padded) < 4 {
		return nil, malformedf("segment truncated")
	}
	clen := binary.BigEndian.Uint32(padded)
	if uint64(clen) > uint64(len(padded)-4) {
		return nil, malformedf("segment length out of range")
	}
	for _, b := range padded[4+clen:] {
		if b != 0 {
			return nil, malformedf("segment padding not zero")
		}
	}
	_, dec, err := codecs()
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(padded[4:4+clen], nil)
	if err != nil {
		return nil, malformedf("segment does not decompress: %v", err)
	}
	if len(raw) > maxPlain {
		return nil, malformedf("segment decompresses to over %d bytes", maxPlain)
	}
	return raw, nil
}
