// Package transfer moves files encrypted with filecrypt to and from the blob
// service (server/blob), streaming in constant memory and resuming
// interrupted transfers.
//
// To send: [Client.CreateUpload] makes a fresh key and a blob; persist the
// returned [Upload] and call [Client.Upload], again after any failure, to
// get the [filecrypt.FileRef] to put in a message. To receive:
// [Client.Download] writes to "PATH.part" and renames it to PATH only after
// every chunk authenticated and the plaintext hash matched; calling it again
// after a failure resumes from the last verified chunk.
package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/parley-im/parley/filecrypt"
)

// Client talks to one blob service.
type Client struct {
	// BaseURL is the homeserver's URL, such as "https://example.org".
	BaseURL string
	// HTTP is the client used (default http.DefaultClient).
	HTTP *http.Client
	// Token returns the bearer token for uploads (downloads need none).
	Token func(ctx context.Context) (string, error)
	// SegmentSize is the most ciphertext bytes one append request carries
	// (default: all that is left, in one request). The service records
	// durable progress at its own checkpoints within a request and at the
	// end of each, so smaller requests only add round trips.
	SegmentSize int64
}

// Progress reports bytes of plaintext done out of total.
type Progress func(done, total int64)

// Errors the service reports, by their wire code.
var (
	ErrNotFound       = errors.New("transfer: no such blob")
	ErrUnauthorized   = errors.New("transfer: not authorized")
	ErrForbidden      = errors.New("transfer: not the owner of this blob")
	ErrOffset         = errors.New("transfer: wrong upload offset")
	ErrTooLarge       = errors.New("transfer: file larger than the server accepts")
	ErrQuota          = errors.New("transfer: storage quota exceeded")
	ErrIncomplete     = errors.New("transfer: upload not complete")
	ErrDigestMismatch = errors.New("transfer: the server holds different bytes than this file encrypts to")
	ErrNotFinished    = errors.New("transfer: upload not finished yet")
	ErrFinished       = errors.New("transfer: upload already finished")
	// ErrHashMismatch means a download authenticated but its plaintext does
	// not match the hash or size in the file reference.
	ErrHashMismatch = errors.New("transfer: downloaded file does not match its reference")
	// ErrProtocol means the server answered outside the protocol.
	ErrProtocol = errors.New("transfer: unexpected server response")
)

var codeErrors = map[string]error{
	"not_found":          ErrNotFound,
	"unauthorized":       ErrUnauthorized,
	"forbidden":          ErrForbidden,
	"offset_mismatch":    ErrOffset,
	"too_large":          ErrTooLarge,
	"over_declared_size": ErrTooLarge,
	"quota_exceeded":     ErrQuota,
	"incomplete":         ErrIncomplete,
	"digest_mismatch":    ErrDigestMismatch,
	"finished":           ErrFinished,
	"not_finished":       ErrNotFinished,
}

// ServerError is an error answer of the blob service.
type ServerError struct {
	Status  int
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("blob service: %s (%d %s)", e.Message, e.Status, e.Code)
}

// Unwrap returns the sentinel error for the code, if there is one.
func (e *ServerError) Unwrap() error { return codeErrors[e.Code] }

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 4 << 10

func responseError(resp *http.Response) error {
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		return fmt.Errorf("%w: status %d", ErrProtocol, resp.StatusCode)
	}
	return &ServerError{Status: resp.StatusCode, Code: body.Error, Message: body.Message}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) url(id filecrypt.BlobID, suffix string) string {
	u := strings.TrimSuffix(c.BaseURL, "/") + "/v1/blobs"
	if id != (filecrypt.BlobID{}) {
		u += "/" + id.String()
	}
	return u + suffix
}

func (c *Client) do(ctx context.Context, method, url string, body io.Reader, auth bool, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("failed to build request: %w", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if auth {
		if c.Token == nil {
			return nil, fmt.Errorf("%w: no token source", ErrUnauthorized)
		}
		tok, err := c.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to get token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to %s blob: %w", method, err)
	}
	return resp, nil
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// status is what HEAD reports about a blob.
type status struct {
	offset, size int64
	complete     bool
}

func (c *Client) head(ctx context.Context, id filecrypt.BlobID) (status, error) {
	resp, err := c.do(ctx, http.MethodHead, c.url(id, ""), nil, false, nil)
	if err != nil {
		return status{}, err
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusOK {
		// HEAD has no body; map the status alone.
		if resp.StatusCode == http.StatusNotFound {
			return status{}, &ServerError{Status: resp.StatusCode, Code: "not_found", Message: "no such blob"}
		}
		return status{}, fmt.Errorf("%w: HEAD status %d", ErrProtocol, resp.StatusCode)
	}
	var st status
	st.offset, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err == nil {
		st.size, err = strconv.ParseInt(resp.Header.Get("Upload-Length"), 10, 64)
	}
	if err != nil || st.offset < 0 || st.offset > st.size {
		return status{}, fmt.Errorf("%w: bad offset headers", ErrProtocol)
	}
	st.complete = resp.Header.Get("Upload-Complete") == "?1"
	return st, nil
}
