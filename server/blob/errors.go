package blob

import (
	"errors"
	"net/http"
)

// Errors the service reports; each maps to an HTTP status and a stable code
// in the JSON error body.
var (
	ErrNotFound       = errors.New("blob: no such blob")
	ErrUnauthorized   = errors.New("blob: missing or invalid bearer token")
	ErrForbidden      = errors.New("blob: not the owner of this blob")
	ErrOffset         = errors.New("blob: wrong upload offset")
	ErrTooLarge       = errors.New("blob: larger than the maximum blob size")
	ErrOverDeclared   = errors.New("blob: more data than the declared size")
	ErrQuota          = errors.New("blob: storage quota exceeded")
	ErrIncomplete     = errors.New("blob: upload is not complete")
	ErrDigestMismatch = errors.New("blob: content hash does not match the uploaded data")
	ErrFinished       = errors.New("blob: upload already finished")
	ErrNotFinished    = errors.New("blob: upload not finished yet")
	ErrBadRequest     = errors.New("blob: malformed request")
	ErrCorrupt        = errors.New("blob: stored data does not match its record")
	ErrRange          = errors.New("blob: requested range not satisfiable")
)

// errorCodes lists, for each error, its HTTP status and wire code.
var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrForbidden, http.StatusForbidden, "forbidden"},
	{ErrOffset, http.StatusConflict, "offset_mismatch"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ErrOverDeclared, http.StatusRequestEntityTooLarge, "over_declared_size"},
	{ErrQuota, http.StatusInsufficientStorage, "quota_exceeded"},
	{ErrIncomplete, http.StatusConflict, "incomplete"},
	{ErrDigestMismatch, http.StatusUnprocessableEntity, "digest_mismatch"},
	{ErrFinished, http.StatusConflict, "finished"},
	{ErrNotFinished, http.StatusConflict, "not_finished"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrRange, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable"},
}

// statusOf maps an error to its status and code; anything else is internal.
func statusOf(err error) (int, string) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	return http.StatusInternalServerError, "internal"
}
