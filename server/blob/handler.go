package blob

import (
	"context"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/minio/crc64nvme"

	"github.com/parley-im/parley/identity"
)

// HTTP header names of the protocol.
const (
	HeaderLength   = "Upload-Length"
	HeaderOffset   = "Upload-Offset"
	HeaderComplete = "Upload-Complete"
	// HeaderChecksum carries, on finish, the CRC-64/NVME of the whole blob
	// as 16 hex digits. It catches a client whose resumed upload does not
	// continue the bytes it sent before (the file changed in between);
	// integrity against anyone else comes from the end-to-end encryption
	// and the content hash inside the message, so a checksum the server
	// computes at memory speed is enough here.
	HeaderChecksum = "Upload-CRC64"
)

// CheckpointSize is how many bytes an append request stores between
// durable checkpoints: every CheckpointSize bytes the backend syncs and the
// new offset is recorded, so a long request that is cut (or a server that
// crashes) loses at most this much.
const CheckpointSize = 64 << 20

// Handler serves the blob protocol. Mount it for both "/v1/blobs" and
// "/v1/blobs/".
type Handler struct {
	cfg     Config
	backend Backend
	meta    MetaStore
	auth    Authorizer
	mux     *http.ServeMux
	locks   keyedLocks
	uploads chan []byte // free segment buffers; bounds concurrent appends
}

// NewHandler returns the blob service over backend and meta, authenticating
// uploads with auth. Downloads need only the blob id.
func NewHandler(cfg Config, backend Backend, meta MetaStore, auth Authorizer) *Handler {
	cfg.setDefaults()
	h := &Handler{cfg: cfg, backend: backend, meta: meta, auth: auth, mux: http.NewServeMux(),
		uploads: make(chan []byte, cfg.MaxUploads)}
	for range cfg.MaxUploads {
		h.uploads <- nil // buffers are allocated on first use
	}
	h.mux.HandleFunc("POST /v1/blobs", h.create)
	h.mux.HandleFunc("HEAD /v1/blobs/{id}", h.head)
	h.mux.HandleFunc("PATCH /v1/blobs/{id}", h.patch)
	h.mux.HandleFunc("POST /v1/blobs/{id}/finish", h.finish)
	h.mux.HandleFunc("DELETE /v1/blobs/{id}", h.delete)
	h.mux.HandleFunc("GET /v1/blobs/{id}", h.get)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// State is the JSON body of create and finish responses.
type State struct {
	ID      string    `json:"id"`
	Size    int64     `json:"size"`
	Offset  int64     `json:"offset"`
	Expires time.Time `json:"expires"`
}

func (h *Handler) state(m Meta) State {
	exp := m.Updated.Add(h.cfg.UploadTTL)
	if !m.Finished.IsZero() {
		exp = m.Finished.Add(h.cfg.Retention)
	}
	return State{ID: m.ID.String(), Size: m.Size, Offset: m.Offset, Expires: exp.UTC()}
}

func (h *Handler) writeError(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		h.cfg.Logger.Error("blob request failed", "err", err)
		msg = "internal error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) account(r *http.Request) (identity.AccountID, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", ErrUnauthorized
	}
	acct, err := h.auth.Authorize(r.Context(), token)
	if err != nil {
		return "", fmt.Errorf("failed to authorize: %w", err)
	}
	return acct, nil
}

func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: bad number %q", ErrBadRequest, s)
	}
	return n, nil
}

// owned loads a blob for its owner, holding its lock; the caller must call
// unlock when the returned error is nil.
func (h *Handler) owned(r *http.Request) (Meta, func(), error) {
	acct, err := h.account(r)
	if err != nil {
		return Meta{}, nil, err
	}
	m, unlock, err := h.locked(r)
	if err != nil {
		return Meta{}, nil, err
	}
	if m.Owner != acct {
		unlock()
		return Meta{}, nil, ErrForbidden
	}
	return m, unlock, nil
}

// locked loads a blob holding its lock.
func (h *Handler) locked(r *http.Request) (Meta, func(), error) {
	id, err := ParseID(r.PathValue("id"))
	if err != nil {
		return Meta{}, nil, err
	}
	unlock, err := h.locks.lock(r.Context(), id)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("failed to lock blob: %w", err)
	}
	m, err := h.meta.Get(r.Context(), id)
	if err != nil {
		unlock()
		return Meta{}, nil, err
	}
	return m, unlock, nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	acct, err := h.account(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	size, err := parseSize(r.Header.Get(HeaderLength))
	if err != nil {
		h.writeError(w, err)
		return
	}
	if size > h.cfg.MaxSize {
		h.writeError(w, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, h.cfg.MaxSize))
		return
	}
	id, err := NewID(h.cfg.Rand)
	if err != nil {
		h.writeError(w, err)
		return
	}
	now := h.cfg.Now()
	m := Meta{ID: id, Owner: acct, Size: size, Created: now, Updated: now}
	if err := h.meta.Create(r.Context(), m, Quota{Bytes: h.cfg.Quota, Blobs: h.cfg.QuotaBlobs}); err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/blobs/"+id.String())
	writeJSON(w, http.StatusCreated, h.state(m))
}

func setOffsetHeaders(w http.ResponseWriter, m Meta) {
	w.Header().Set(HeaderOffset, strconv.FormatInt(m.Offset, 10))
	w.Header().Set(HeaderLength, strconv.FormatInt(m.Size, 10))
	complete := "?0"
	if !m.Finished.IsZero() {
		complete = "?1"
	}
	w.Header().Set(HeaderComplete, complete)
	w.Header().Set("Cache-Control", "no-store")
}

func (h *Handler) head(w http.ResponseWriter, r *http.Request) {
	// Taking the lock makes the answer wait for an append still running
	// (say, one whose client just vanished), so a resuming client sees
	// its final offset.
	m, unlock, err := h.locked(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	unlock()
	setOffsetHeaders(w, m)
	w.WriteHeader(http.StatusOK)
}

// restoreHash continues the checksum over the bytes stored so far.
func restoreHash(m Meta) (hash.Hash64, error) {
	hh := crc64nvme.New()
	if len(m.HashState) > 0 {
		if err := hh.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.HashState); err != nil {
			return nil, fmt.Errorf("%w: hash state: %v", ErrCorrupt, err)
		}
	}
	return hh, nil
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	m, unlock, err := h.owned(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer unlock()
	offset, err := parseSize(r.Header.Get(HeaderOffset))
	switch {
	case err != nil:
	case !m.Finished.IsZero():
		err = ErrFinished
	case offset != m.Offset:
		err = fmt.Errorf("%w: upload is at %d, request starts at %d", ErrOffset, m.Offset, offset)
	case r.ContentLength > m.Size-m.Offset:
		err = fmt.Errorf("%w: %d bytes left, request has %d", ErrOverDeclared, m.Size-m.Offset, r.ContentLength)
	}
	if err != nil {
		setOffsetHeaders(w, m)
		h.writeError(w, err)
		return
	}
	// Lock order: the blob's lock, then an upload slot.
	var buf []byte
	select {
	case buf = <-h.uploads:
	case <-r.Context().Done():
		h.writeError(w, fmt.Errorf("failed to wait for an upload slot: %w", r.Context().Err()))
		return
	}
	defer func() { h.uploads <- buf }()
	if buf == nil {
		buf = make([]byte, h.backend.SegmentSize())
	}
	m, err = h.appendBody(w, r, m, buf)
	setOffsetHeaders(w, m)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// appendBody stores the request body after m.Offset and records the new
// offset, at every checkpoint and at the end. What arrived before a broken
// connection is kept; only bytes the backend made durable are recorded.
func (h *Handler) appendBody(w http.ResponseWriter, r *http.Request, m Meta, buf []byte) (Meta, error) {
	// A client that vanishes must not cancel storing what it sent.
	ctx := context.WithoutCancel(r.Context())
	hh, err := restoreHash(m)
	if err != nil {
		return m, err
	}
	app, err := h.backend.OpenAppend(ctx, m.ID, m.Offset)
	if err != nil {
		return m, err
	}
	body := &idleReader{r: io.LimitReader(r.Body, m.Size-m.Offset+1), rc: http.NewResponseController(w), idle: h.cfg.IdleTimeout}
	offset, unsynced := m.Offset, int64(0)
	from, direct := app.(appenderFrom)
	var failure error
	for failure == nil {
		var n int64
		var rerr error
		if direct && offset < m.Size {
			// The backend reads the body into its own buffers: no copy.
			want := min(h.cfg.Checkpoint-unsynced, m.Size-offset)
			cr := &checksumReader{r: io.LimitReader(body, want), h: hh}
			var werr error
			n, werr = from.AppendFrom(cr)
			switch {
			case cr.err != nil && cr.err != io.EOF:
				rerr = cr.err
			case werr != nil:
				failure = werr
			case n < want:
				rerr = io.EOF
			}
		} else {
			var k int
			k, rerr = io.ReadFull(body, buf)
			n = int64(k)
			if left := m.Size - offset; n > left {
				n = left
				failure = fmt.Errorf("%w: declared %d bytes", ErrOverDeclared, m.Size)
			}
			if n > 0 {
				if err := app.Append(buf[:n]); err != nil {
					failure = err
					break
				}
				hh.Write(buf[:n])
			}
		}
		offset += n
		unsynced += n
		if failure != nil {
			break
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil && failure == nil {
			failure = fmt.Errorf("%w: failed to read body: %v", ErrBadRequest, rerr)
		}
		if failure == nil && unsynced >= h.cfg.Checkpoint {
			if err := app.Sync(); err != nil {
				_ = app.Close()
				return m, err
			}
			if m, err = h.record(ctx, m, offset, hh); err != nil {
				_ = app.Close()
				return m, err
			}
			unsynced = 0
		}
	}
	if err := app.Close(); err != nil {
		return m, err // nothing more is recorded: the data may not be durable
	}
	if offset != m.Offset {
		if m, err = h.record(ctx, m, offset, hh); err != nil {
			return m, err
		}
	}
	return m, failure
}

// record stores that the blob's bytes up to offset are durable, with the
// checksum over them.
func (h *Handler) record(ctx context.Context, m Meta, offset int64, hh hash.Hash64) (Meta, error) {
	state, err := hh.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return m, fmt.Errorf("failed to save checksum state: %w", err)
	}
	next := m
	next.Offset, next.HashState, next.Updated = offset, state, h.cfg.Now()
	if err := h.meta.Update(ctx, next, m.Offset); err != nil {
		return m, err
	}
	return next, nil
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request) {
	m, unlock, err := h.owned(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer unlock()
	want, err := hex.DecodeString(r.Header.Get(HeaderChecksum))
	if err != nil || len(want) != crc64nvme.Size {
		h.writeError(w, fmt.Errorf("%w: %s must be 16 hex digits", ErrBadRequest, HeaderChecksum))
		return
	}
	if m.Offset != m.Size {
		setOffsetHeaders(w, m)
		h.writeError(w, fmt.Errorf("%w: %d of %d bytes uploaded", ErrIncomplete, m.Offset, m.Size))
		return
	}
	hh, err := restoreHash(m)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if subtle.ConstantTimeCompare(binary.BigEndian.AppendUint64(nil, hh.Sum64()), want) != 1 {
		h.writeError(w, ErrDigestMismatch)
		return
	}
	if m.Finished.IsZero() {
		if err := h.backend.Finish(r.Context(), m.ID, m.Size); err != nil {
			h.writeError(w, err)
			return
		}
		m.Finished = h.cfg.Now()
		if err := h.meta.Update(r.Context(), m, m.Offset); err != nil {
			h.writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, h.state(m))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	m, unlock, err := h.owned(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer unlock()
	if err := h.remove(r.Context(), m.ID); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove deletes a blob's data, then its record (so a failure leaves a
// record that the next sweep retries).
func (h *Handler) remove(ctx context.Context, id ID) error {
	if err := h.backend.Delete(ctx, id); err != nil {
		return err
	}
	return h.meta.Delete(ctx, id)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, err := ParseID(r.PathValue("id"))
	if err != nil {
		h.writeError(w, err)
		return
	}
	m, err := h.meta.Get(r.Context(), id)
	if err == nil && m.Finished.IsZero() {
		err = ErrNotFinished
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	rs, err := h.backend.Open(r.Context(), id, m.Size)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer rs.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "private, no-transform")
	w.Header().Set("Accept-Ranges", "bytes")
	start, n, partial, ok := parseRange(r.Header.Get("Range"), m.Size)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(m.Size, 10))
		h.writeError(w, fmt.Errorf("%w: range %q outside the blob's %d bytes", ErrRange, r.Header.Get("Range"), m.Size))
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+n-1, m.Size))
		status = http.StatusPartialContent
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		h.writeError(w, fmt.Errorf("failed to read blob: %w", err))
		return
	}
	w.WriteHeader(status)
	// To the end, io.Copy uses the backend reader's WriteTo if it has one
	// (the local one reads the next buffer while the last is sent).
	var src io.Reader = rs
	if start+n != m.Size {
		src = io.LimitReader(rs, n)
	}
	if _, err := io.Copy(w, src); err != nil {
		h.cfg.Logger.Debug("blob download cut", "err", err)
	}
}

// parseRange parses a Range header of one byte range ("bytes=a-b",
// "bytes=a-", "bytes=-n") against a blob of size bytes. An empty header or a
// list of ranges means the whole blob (a server may ignore Range); a range
// that starts at or after the end is not satisfiable.
func parseRange(h string, size int64) (start, n int64, partial, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if h == "" || !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	if a == "" {
		last, err := strconv.ParseInt(b, 10, 64)
		if err != nil || last <= 0 || size == 0 {
			return 0, 0, false, false
		}
		last = min(last, size)
		return size - last, last, true, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false, false
	}
	end := size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < first {
			return 0, 0, false, false
		}
		end = min(end, size-1)
	}
	return first, end - first + 1, true, true
}

// sweepBatch bounds how many expired blobs one query returns.
const sweepBatch = 256

// Sweep deletes unfinished blobs idle for longer than the upload TTL and
// finished blobs older than the retention, and returns how many it deleted.
// The homeserver calls it periodically.
func (h *Handler) Sweep(ctx context.Context) (int, error) {
	deleted := 0
	for {
		now := h.cfg.Now()
		idle, old := now.Add(-h.cfg.UploadTTL), now.Add(-h.cfg.Retention)
		ids, err := h.meta.Expired(ctx, idle, old, sweepBatch)
		if err != nil {
			return deleted, fmt.Errorf("failed to list expired blobs: %w", err)
		}
		progress := 0
		for _, id := range ids {
			n, err := h.sweepOne(ctx, id, idle, old)
			if err != nil {
				return deleted, err
			}
			deleted += n
			progress += n
		}
		if len(ids) < sweepBatch || progress == 0 {
			return deleted, nil
		}
	}
}

func (h *Handler) sweepOne(ctx context.Context, id ID, idle, old time.Time) (int, error) {
	unlock, err := h.locks.lock(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("failed to lock blob: %w", err)
	}
	defer unlock()
	m, err := h.meta.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// An upload may have progressed since the query.
	if (m.Finished.IsZero() && !m.Updated.Before(idle)) || (!m.Finished.IsZero() && !m.Finished.Before(old)) {
		return 0, nil
	}
	if err := h.remove(ctx, id); err != nil {
		return 0, fmt.Errorf("failed to delete expired blob: %w", err)
	}
	return 1, nil
}

// appenderFrom is an [Appender] that reads the data itself, straight into
// its buffers (the local backend's O_DIRECT writer); it returns how many
// bytes it stored. An error of r is returned as is.
type appenderFrom interface {
	AppendFrom(r io.Reader) (int64, error)
}

// checksumReader feeds what it reads into a checksum and keeps the error
// of the underlying reader, to tell it from a storage error.
type checksumReader struct {
	r   io.Reader
	h   hash.Hash64
	err error
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err != nil {
		c.err = err
	}
	return n, err
}

// idleReader drops a connection that sends nothing for idle, by moving the
// read deadline forward before every read. Deadlines are wall-clock time
// (the network poller's), not the configured clock.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle)) // unsupported writers just have no idle limit
	return i.r.Read(p)
}
