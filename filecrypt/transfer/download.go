package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/internal/directio"
)

// PartSuffix is appended to the destination path while a download runs.
const PartSuffix = ".part"

// Download fetches, decrypts and verifies the file ref points to and writes
// it to path. Plaintext goes to path+PartSuffix, one authenticated chunk at a
// time; the file is renamed to path only after the last chunk authenticated
// and the size and hash match. If the ciphertext fails authentication or the
// hash differs, the partial file is removed and an error returned. After any
// other failure (a network error), calling Download again resumes after the
// last verified chunk.
func (c *Client) Download(ctx context.Context, ref filecrypt.FileRef, path string, progress Progress) (err error) {
	if ref.Size < 0 || ref.Size > filecrypt.MaxSize {
		return fmt.Errorf("%w: size %d", filecrypt.ErrFileRef, ref.Size)
	}
	part := path + PartSuffix
	// Resume after the verified chunks on disk, but always fetch the last
	// chunk again: only it proves where the file ends.
	var onDisk int64
	if st, err := os.Stat(part); err == nil {
		onDisk = st.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to open download file: %w", err)
	}
	chunks := max(1, (ref.Size+filecrypt.ChunkSize-1)/filecrypt.ChunkSize)
	first := min(onDisk/filecrypt.ChunkSize, chunks-1)
	have := first * filecrypt.ChunkSize
	h := sha256.New()
	if have > 0 {
		if err := hashPrefix(h, part, have); err != nil {
			return err
		}
	}
	// The plaintext bypasses the page cache where it can: the final sync
	// then has little left to write.
	f, err := directio.Append(part, have)
	if err != nil {
		return fmt.Errorf("failed to open download file: %w", err)
	}
	discard := false
	defer func() {
		switch {
		case f == nil:
		case discard:
			_ = f.Abort()
		default:
			// Keep the verified plaintext for a resumed download.
			_ = f.Close()
		}
		if discard {
			_ = os.Remove(part)
		}
	}()
	ctSize, err := filecrypt.CiphertextSize(ref.Size)
	if err != nil {
		return fmt.Errorf("%w: %v", filecrypt.ErrFileRef, err)
	}
	start := int64(0)
	if first > 0 {
		start = filecrypt.ChunkOffset(uint64(first))
	}
	body, length, err := c.fetch(ctx, ref.Blob, uint64(first))
	if err != nil {
		return err
	}
	defer body.Close()
	if length >= 0 && length != ctSize-start {
		// The service holds a blob of another size than this file
		// encrypts to: it cannot decrypt to the file.
		discard = true
		return fmt.Errorf("failed to decrypt download: %w: %d bytes from offset %d, want %d",
			filecrypt.ErrAuthentication, length, start, ctSize-start)
	}
	if first == 0 {
		var hdr [filecrypt.HeaderSize]byte
		if _, err := io.ReadFull(body, hdr[:]); err != nil {
			return fmt.Errorf("failed to download: %w", err)
		}
		if _, err := filecrypt.ParseHeader(hdr[:]); err != nil {
			discard = true
			return fmt.Errorf("failed to decrypt download: %w", err)
		}
	}
	open, err := filecrypt.NewChunkOpener(ref.Key, uint64(first))
	if err != nil {
		return err
	}
	done, err := receive(body, open, f, h, ref.Size, have, progress)
	if err != nil {
		discard = isIntegrity(err)
		return fmt.Errorf("failed to download: %w", err)
	}
	if done != ref.Size || !hashEqual(h.Sum(nil), ref.Hash) {
		discard = true
		return ErrHashMismatch
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("failed to write download: %w", err)
	}
	if err := os.Rename(part, path); err != nil {
		return fmt.Errorf("failed to move download into place: %w", err)
	}
	return nil
}

// hashPrefix hashes the first n bytes of the file at path.
func hashPrefix(h io.Writer, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to resume download: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
		return fmt.Errorf("failed to resume download: %w", err)
	}
	return nil
}

func isIntegrity(err error) bool {
	return errors.Is(err, filecrypt.ErrAuthentication) || errors.Is(err, filecrypt.ErrHeader) ||
		errors.Is(err, filecrypt.ErrVersion) || errors.Is(err, ErrHashMismatch)
}

func hashEqual(a []byte, b filecrypt.Hash) bool { return string(a) == string(b[:]) }

// fetch GETs the ciphertext from chunk first on and returns the body and
// its length (-1 if the service did not say).
func (c *Client) fetch(ctx context.Context, id filecrypt.BlobID, first uint64) (io.ReadCloser, int64, error) {
	var hdr map[string]string
	start := int64(0)
	if first > 0 {
		start = filecrypt.ChunkOffset(first)
		hdr = map[string]string{"Range": "bytes=" + strconv.FormatInt(start, 10) + "-"}
	}
	resp, err := c.do(ctx, http.MethodGet, c.url(id, ""), nil, false, hdr)
	if err != nil {
		return nil, 0, err
	}
	want := http.StatusOK
	if first > 0 {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		defer drainClose(resp)
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return nil, 0, fmt.Errorf("%w: blob shorter than the file", filecrypt.ErrAuthentication)
		}
		return nil, 0, fmt.Errorf("failed to download: %w", responseError(resp))
	}
	if first > 0 && !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(start, 10)+"-") {
		_ = resp.Body.Close()
		return nil, 0, fmt.Errorf("%w: Content-Range %q", ErrProtocol, resp.Header.Get("Content-Range"))
	}
	return resp.Body, resp.ContentLength, nil
}
