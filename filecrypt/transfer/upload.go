package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"

	"github.com/minio/crc64nvme"

	"github.com/parley-im/parley/filecrypt"
)

// Upload is the state of one upload. Persist it to resume after a crash;
// its key encrypts this one file only, so a file that changed must be sent
// as a new upload.
type Upload struct {
	Blob filecrypt.BlobID
	Key  filecrypt.Key
	Size int64 // plaintext size
}

// CreateUpload makes a fresh file key from rand and a blob on the service
// for a plaintext of size bytes.
func (c *Client) CreateUpload(ctx context.Context, size int64, rand io.Reader) (Upload, error) {
	ctSize, err := filecrypt.CiphertextSize(size)
	if err != nil {
		return Upload{}, err
	}
	key, err := filecrypt.NewKey(rand)
	if err != nil {
		return Upload{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, c.url(filecrypt.BlobID{}, ""), nil, true,
		map[string]string{"Upload-Length": strconv.FormatInt(ctSize, 10)})
	if err != nil {
		return Upload{}, err
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusCreated {
		return Upload{}, fmt.Errorf("failed to create blob: %w", responseError(resp))
	}
	var st struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&st); err != nil {
		return Upload{}, fmt.Errorf("%w: create answer: %v", ErrProtocol, err)
	}
	id, err := filecrypt.ParseBlobID(st.ID)
	if err != nil {
		return Upload{}, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return Upload{Blob: id, Key: key, Size: size}, nil
}

// countingReader reports plaintext progress as ciphertext is read.
type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// plainDone converts a ciphertext offset to the plaintext bytes it covers.
func plainDone(ct, size int64) int64 {
	if ct <= filecrypt.HeaderSize {
		return 0
	}
	body := ct - filecrypt.HeaderSize
	const sealed = filecrypt.ChunkSize + filecrypt.Overhead
	done := body/sealed*filecrypt.ChunkSize + max(0, body%sealed-filecrypt.Overhead)
	return min(done, size)
}

// Upload encrypts src (up.Size bytes) and uploads what the service does not
// have yet, then finishes the blob. It may be called again after any
// failure: encryption is deterministic given the key, so the resumed bytes
// are the ones an uninterrupted upload would have sent. The file is read
// from the start each time to recompute the hashes.
//
// The work is split over two goroutines: one reads the file straight into
// the buffers the ciphertext is sent from and computes its SHA-256 (the
// content hash in the file reference), the other seals each chunk in place,
// computes the CRC-64 the service checks at finish and sends.
func (c *Client) Upload(ctx context.Context, up Upload, src io.ReaderAt, progress Progress) (filecrypt.FileRef, error) {
	for attempt := 0; ; attempt++ {
		ref, err := c.upload(ctx, up, src, progress)
		// A request of an earlier, interrupted attempt may still have been
		// on its way when we asked for the offset; the service then
		// answers with the offset it really has, and we start again there.
		if errors.Is(err, ErrOffset) && attempt < maxOffsetRetries {
			continue
		}
		return ref, err
	}
}

// maxOffsetRetries bounds restarts after an offset conflict.
const maxOffsetRetries = 3

func (c *Client) upload(ctx context.Context, up Upload, src io.ReaderAt, progress Progress) (filecrypt.FileRef, error) {
	ctSize, err := filecrypt.CiphertextSize(up.Size)
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	st, err := c.head(ctx, up.Blob)
	if err != nil {
		return filecrypt.FileRef{}, fmt.Errorf("failed to query upload offset: %w", err)
	}
	if st.size != ctSize {
		return filecrypt.FileRef{}, fmt.Errorf("%w: blob declared %d bytes, file needs %d", ErrProtocol, st.size, ctSize)
	}
	ptHash, ctHash := sha256.New(), crc64nvme.New()
	enc, err := newSealingReader(src, up.Size, up.Key, ptHash, ctHash)
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	defer enc.Close()
	ct := &countingReader{r: enc}
	if progress != nil {
		ct.progress = func(n int64) { progress(plainDone(n, up.Size), up.Size) }
	}
	// Skip (but hash) what the service already holds.
	if _, err := io.CopyN(io.Discard, ct, st.offset); err != nil {
		return filecrypt.FileRef{}, fmt.Errorf("failed to re-read file: %w", err)
	}
	offset := st.offset
	if !st.complete {
		for offset < ctSize {
			n := min(c.segment(), ctSize-offset)
			if offset, err = c.patch(ctx, up.Blob, offset, io.LimitReader(ct, n), n); err != nil {
				return filecrypt.FileRef{}, err
			}
		}
	}
	// Drain the encrypter so both hashes cover the whole file (this also
	// catches a file that grew or shrank).
	if rest, err := io.Copy(io.Discard, ct); err != nil || rest != 0 || ct.n != ctSize {
		return filecrypt.FileRef{}, fmt.Errorf("failed to read file: changed while sending (%v)", err)
	}
	_ = enc.Close() // the reader hit EOF, so ptHash is complete
	if err := c.finish(ctx, up.Blob, ctHash); err != nil {
		return filecrypt.FileRef{}, err
	}
	ref := filecrypt.FileRef{Blob: up.Blob, Key: up.Key, Size: up.Size}
	copy(ref.Hash[:], ptHash.Sum(nil))
	return ref, nil
}

func (c *Client) segment() int64 {
	if c.SegmentSize > 0 {
		return c.SegmentSize
	}
	return filecrypt.MaxSize * 2 // the rest of the file in one request
}

// patch sends n bytes from body at offset and returns the new offset.
func (c *Client) patch(ctx context.Context, id filecrypt.BlobID, offset int64, body io.Reader, n int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, c.url(id, ""), io.NopCloser(body))
	if err != nil {
		return offset, fmt.Errorf("failed to build request: %w", err)
	}
	req.ContentLength = n
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.Token == nil {
		return offset, fmt.Errorf("%w: no token source", ErrUnauthorized)
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return offset, fmt.Errorf("failed to get token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http().Do(req)
	if err != nil {
		return offset, fmt.Errorf("failed to upload: %w", err)
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusNoContent {
		return offset, fmt.Errorf("failed to upload at offset %d: %w", offset, responseError(resp))
	}
	next, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || next != offset+n {
		return offset, fmt.Errorf("%w: offset %q after sending %d bytes at %d", ErrProtocol, resp.Header.Get("Upload-Offset"), n, offset)
	}
	return next, nil
}

func (c *Client) finish(ctx context.Context, id filecrypt.BlobID, ctHash hash.Hash64) error {
	resp, err := c.do(ctx, http.MethodPost, c.url(id, "/finish"), nil, true,
		map[string]string{"Upload-CRC64": hex.EncodeToString(binary.BigEndian.AppendUint64(nil, ctHash.Sum64()))})
	if err != nil {
		return err
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failed to finish upload: %w", responseError(resp))
	}
	return nil
}

// Delete removes an upload (say, after ErrDigestMismatch) and frees its
// quota.
func (c *Client) Delete(ctx context.Context, id filecrypt.BlobID) error {
	resp, err := c.do(ctx, http.MethodDelete, c.url(id, ""), nil, true, nil)
	if err != nil {
		return err
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("failed to delete blob: %w", responseError(resp))
	}
	return nil
}
