package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/filecrypt/transfer"
	"github.com/parley-im/parley/server/blob/devtoken"
)

// Errors of file transfer.
var (
	// ErrNotFile means a message is not a file message.
	ErrNotFile = errors.New("client: not a file message")
	// ErrFileChanged means the file changed while an upload of it was
	// being resumed; it must be sent again.
	ErrFileChanged = errors.New("client: the file changed during the upload; send it again")
	// ErrFileTooLarge means the server refuses a file of this size.
	ErrFileTooLarge = errors.New("client: file larger than the server accepts")
	// ErrFileQuota means the account's storage quota on the server is used up.
	ErrFileQuota = errors.New("client: file storage quota exceeded")
)

// FileProgress reports bytes of a file done out of total.
type FileProgress = transfer.Progress

// File describes the file a file message carries.
type File struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// FileOf returns the file a message of kind store.KindFile describes.
func FileOf(m *Message) (File, error) {
	ref, err := fileRef(m)
	if err != nil {
		return File{}, err
	}
	return File{Name: ref.Name, Size: ref.Size, MediaType: ref.MediaType}, nil
}

func fileRef(m *Message) (filecrypt.FileRef, error) {
	if m == nil || m.Kind != store.KindFile || m.Deleted {
		return filecrypt.FileRef{}, ErrNotFile
	}
	ref, err := filecrypt.ParseFileRef(m.Body)
	if err != nil {
		return filecrypt.FileRef{}, fmt.Errorf("failed to read file message: %w", err)
	}
	return ref, nil
}

// blobTokenLifetime is how long a minted blob token is valid.
const blobTokenLifetime = time.Hour

// blobClient returns a client of the home server's blob service (or of
// origin's, for a file held elsewhere), authenticated with tokens this device
// signs.
func (c *Client) blobClient(origin string) (*transfer.Client, error) {
	u, err := url.Parse(c.id.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("failed to parse server URL: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	if origin != "" && origin != u.Host {
		// Another server's blob: download only, and never hand it a
		// token for our home server.
		return &transfer.Client{BaseURL: (&url.URL{Scheme: "https", Host: origin}).String(), HTTP: http.DefaultClient}, nil
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	return &transfer.Client{
		BaseURL: u.String(),
		HTTP:    http.DefaultClient,
		Token: func(context.Context) (string, error) {
			t, err := devtoken.Mint(c.devKey, devtoken.Claims{
				Account: c.account(), Device: c.id.Device, Expires: c.now().Add(blobTokenLifetime),
			}, c.opts.Rand)
			return string(t), err
		},
	}, nil
}

// pendingUpload is the persisted state of an upload (sealed in the store's
// settings, since it holds the file key).
type pendingUpload struct {
	Blob string `json:"blob"`
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// Message is the id the file message gets, fixed when the upload
	// starts, so that a run interrupted after queueing the message and
	// then repeated finds it instead of sending a second one.
	Message string `json:"message"`
}

// upload is a pending upload and the id of its file message.
type upload struct {
	transfer.Upload
	message MessageID
}

// fileQueuedHook, when set by a test, runs after a file message is queued
// and before the upload state is cleared; an error stops SendFilePath
// there, as a crash at that point would.
var fileQueuedHook func() error

// uploadSetting names the setting that keeps the upload of one version of
// one file to one chat.
func uploadSetting(chat ChatID, abs string, fi os.FileInfo) string {
	h := sha256.New()
	for _, s := range []string{chat.String(), abs, strconv.FormatInt(fi.Size(), 10), strconv.FormatInt(fi.ModTime().UnixNano(), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "file.upload." + hex.EncodeToString(h.Sum(nil)[:16])
}

// SendFilePath encrypts the file at path, uploads it to the home server's
// blob service and sends a file message to chat. If it is interrupted (the
// process killed, the network gone), calling it again with the same chat and
// unchanged file resumes the upload where the server stopped. progress, if
// not nil, is called with bytes done.
func (c *Client) SendFilePath(ctx context.Context, chat ChatID, path string, progress FileProgress) (MessageID, error) {
	if _, err := c.activeConversation(ctx, chat); err != nil {
		return MessageID{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return MessageID{}, fmt.Errorf("failed to resolve %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return MessageID{}, fmt.Errorf("failed to open file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return MessageID{}, fmt.Errorf("failed to open file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return MessageID{}, fmt.Errorf("failed to send %s: not a regular file", path)
	}
	tc, err := c.blobClient("")
	if err != nil {
		return MessageID{}, err
	}
	name := uploadSetting(chat, abs, fi)
	up, err := c.pendingUpload(ctx, name, fi.Size())
	if err != nil {
		return MessageID{}, err
	}
	if up != nil {
		// An earlier run got as far as queueing the file message.
		if _, err := c.st.Message(ctx, up.message); err == nil {
			c.clearUpload(ctx, name)
			return up.message, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return MessageID{}, err
		}
	}
	for attempt := 0; ; attempt++ {
		if up == nil {
			u, err := tc.CreateUpload(ctx, fi.Size(), c.opts.Rand)
			switch {
			case errors.Is(err, transfer.ErrTooLarge):
				return MessageID{}, fmt.Errorf("%w (%d bytes): %w", ErrFileTooLarge, fi.Size(), err)
			case errors.Is(err, transfer.ErrQuota):
				return MessageID{}, fmt.Errorf("%w: %w", ErrFileQuota, err)
			case err != nil:
				return MessageID{}, fmt.Errorf("failed to start upload: %w", err)
			}
			msg, err := store.NewMessageID(c.opts.Rand)
			if err != nil {
				return MessageID{}, err
			}
			up = &upload{Upload: u, message: msg}
			if err := c.savePendingUpload(ctx, name, *up); err != nil {
				return MessageID{}, err
			}
		}
		ref, err := tc.Upload(ctx, up.Upload, f, progress)
		switch {
		case err == nil:
			ref.Name = sanitizeFileName(filepath.Base(abs))
			ref.MediaType = mediaType(abs, f)
			body, err := ref.MarshalBinary()
			if err != nil {
				return MessageID{}, fmt.Errorf("failed to encode file reference: %w", err)
			}
			conv, err := c.activeConversation(ctx, chat)
			if err != nil {
				return MessageID{}, err
			}
			if err := c.postAs(ctx, conv, content.KindFile, body, MessageID{}, up.message); err != nil {
				return MessageID{}, err
			}
			if fileQueuedHook != nil {
				if err := fileQueuedHook(); err != nil {
					return MessageID{}, err
				}
			}
			c.clearUpload(ctx, name)
			return up.message, nil
		case errors.Is(err, transfer.ErrNotFound) && attempt == 0:
			// The unfinished upload expired on the server: start over.
			up = nil
			c.clearUpload(ctx, name)
			continue
		case errors.Is(err, transfer.ErrDigestMismatch):
			_ = tc.Delete(ctx, up.Blob)
			c.clearUpload(ctx, name)
			return MessageID{}, fmt.Errorf("%w: %w", ErrFileChanged, err)
		}
		return MessageID{}, fmt.Errorf("failed to upload %s: %w", filepath.Base(abs), err)
	}
}

// clearUpload forgets an upload's state (best effort: a state left behind
// only makes the next run of the same file find its message again).
func (c *Client) clearUpload(ctx context.Context, name string) {
	_ = c.st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(name) })
}

func (c *Client) pendingUpload(ctx context.Context, name string, size int64) (*upload, error) {
	v, ok, err := c.st.Setting(ctx, name)
	if err != nil || !ok {
		return nil, err
	}
	var p pendingUpload
	if err := json.Unmarshal([]byte(v), &p); err != nil || p.Size != size {
		return nil, nil // an unreadable record: start a new upload
	}
	id, err := filecrypt.ParseBlobID(p.Blob)
	if err != nil {
		return nil, nil
	}
	kb, err := base64.RawStdEncoding.DecodeString(p.Key)
	if err != nil || len(kb) != filecrypt.KeySize {
		return nil, nil
	}
	mb, err := hex.DecodeString(p.Message)
	if err != nil || len(mb) != store.MessageIDSize {
		return nil, nil
	}
	var msg MessageID
	copy(msg[:], mb)
	up := &upload{Upload: transfer.Upload{Blob: id, Size: p.Size}, message: msg}
	copy(up.Key[:], kb)
	return up, nil
}

func (c *Client) savePendingUpload(ctx context.Context, name string, u upload) error {
	v, err := json.Marshal(pendingUpload{Blob: u.Blob.String(), Key: base64.RawStdEncoding.EncodeToString(u.Key[:]), Size: u.Size,
		Message: u.message.String()})
	if err != nil {
		return fmt.Errorf("failed to save upload state: %w", err)
	}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(name, string(v)) }); err != nil {
		return fmt.Errorf("failed to save upload state: %w", err)
	}
	return nil
}

// SafeFileName turns a file name from a file message into a plain base name
// that is safe to create in a folder (no separators, no control characters,
// never "." or "..").
func SafeFileName(name string) string { return sanitizeFileName(filepath.Base(name)) }

// sanitizeFileName makes a base name acceptable to filecrypt.FileRef.
func sanitizeFileName(name string) string {
	out := make([]rune, 0, len(name))
	size := 0
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == 0xfffd {
			r = '_'
		}
		if size+len(string(r)) > filecrypt.MaxNameLen {
			break
		}
		size += len(string(r))
		out = append(out, r)
	}
	s := string(out)
	if s == "" || s == "." || s == ".." {
		return "file"
	}
	return s
}

// mediaType guesses a file's media type from its extension, else from its
// first bytes.
func mediaType(path string, f io.ReaderAt) string {
	if t := mime.TypeByExtension(filepath.Ext(path)); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	buf := make([]byte, 512)
	n, _ := f.ReadAt(buf, 0)
	mt, _, err := mime.ParseMediaType(http.DetectContentType(buf[:n]))
	if err != nil {
		return "application/octet-stream"
	}
	return mt
}

// GetFile downloads, decrypts and verifies the file of a file message and
// writes it to outPath (the file's own name in the current folder if empty).
// The plaintext goes to outPath+".part" and becomes outPath only once all of
// it is verified; a tampered or truncated download is removed and reported.
// Calling it again after an interruption resumes the download. It returns
// the path written.
func (c *Client) GetFile(ctx context.Context, id MessageID, outPath string, progress FileProgress) (string, error) {
	m, err := c.st.Message(ctx, id)
	if err != nil {
		return "", fmt.Errorf("failed to find message %s: %w", id, err)
	}
	ref, err := fileRef(m)
	if err != nil {
		return "", err
	}
	if outPath == "" {
		outPath = SafeFileName(ref.Name)
	}
	tc, err := c.blobClient(ref.Origin)
	if err != nil {
		return "", err
	}
	if err := tc.Download(ctx, ref, outPath, progress); err != nil {
		return "", fmt.Errorf("failed to download %s: %w", ref.Name, err)
	}
	return outPath, nil
}
