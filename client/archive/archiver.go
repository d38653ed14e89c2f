package archive

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// Setting names the archiver keeps in the local store.
const (
	// CursorSetting holds the last store change number archived.
	CursorSetting = "archive.cursor"
)

// Segment size targets: a segment is closed when its records reach either.
const (
	segmentTargetBytes   = 1 << 20
	segmentTargetRecords = 8192
	changesPage          = store.MaxPageSize
)

// Config is what an [Archiver] needs.
type Config struct {
	// Store is the local store whose change feed is archived.
	Store *store.Store
	// Remote holds the account's archive blobs.
	Remote Remote
	// Keyring holds the account's archive keys.
	Keyring *Keyring
	// Device is this device.
	Device identity.DeviceID
	// Devices returns the account's current devices, for [Uploads]; nil
	// means this device is the only one.
	Devices func() []identity.DeviceID
	// Rand is the source of ids, keys and nonces; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Archiver uploads a device's share of the account's history and keeps the
// archive in step with deletions and key rotations. Its methods may be
// called from several goroutines; they run one at a time.
type Archiver struct {
	cfg Config
	mu  sync.Mutex
	// maxRecords closes a segment at this many records (tests lower it).
	maxRecords int
}

// New returns an Archiver for cfg.
func New(cfg Config) (*Archiver, error) {
	if cfg.Store == nil || cfg.Remote == nil || cfg.Keyring == nil || cfg.Device.IsZero() {
		return nil, invalidf("archiver needs a store, a remote, a keyring and a device")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Archiver{cfg: cfg, maxRecords: segmentTargetRecords}, nil
}

// UploadResult says what [Archiver.Upload] did.
type UploadResult struct {
	// Segments is the number of segments uploaded.
	Segments int
	// Records is the number of message and read-mark records in them.
	Records int
	// Conversations is the number of conversation records (and
	// tombstones) in them.
	Conversations int
	// Bytes is the size of the segment and key record blobs uploaded.
	Bytes int64
	// Cursor is the store change number archived up to.
	Cursor store.ChangeSeq
	// Deletions is the number of uploaded records that delete content (a
	// tombstone, or a deletion for everyone): after an upload with any,
	// [Archiver.Compact] has content to erase.
	Deletions int
}

// Upload archives the store's changes since the last Upload, except those
// a [Restore] made ([RestoredSetting]): the messages
// this device uploads by the [Uploads] rule, every tombstone, changed
// read marks, and the conversations that are new or changed (or gone: a
// conversation tombstone). Each segment is stored (segment blob, then key record) before
// the cursor ([CursorSetting]) moves past its records, so a crash uploads
// a segment twice at worst, which restoring merges away.
func (a *Archiver) Upload(ctx context.Context) (*UploadResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cursor, err := a.cursor(ctx)
	if err != nil {
		return nil, err
	}
	var devices []identity.DeviceID
	if a.cfg.Devices != nil {
		devices = a.cfg.Devices()
	}
	res := &UploadResult{Cursor: cursor}
	var recs []Record
	size := 0
	seen := cursor
	flush := func() error {
		if len(recs) > 0 {
			n, err := a.putSegment(ctx, recs, &IndexEntry{Created: a.cfg.Now(), Device: a.cfg.Device, Counter: uint64(seen)})
			if err != nil {
				return err
			}
			res.Segments++
			for _, r := range recs {
				if r.Conv != nil {
					res.Conversations++
				} else {
					res.Records++
				}
			}
			res.Bytes += n
			recs, size = recs[:0], 0
		}
		if seen != res.Cursor {
			if err := a.cfg.Store.Update(ctx, func(tx *store.Tx) error {
				if err := tx.SetSetting(CursorSetting, strconv.FormatInt(int64(seen), 10)); err != nil {
					return err
				}
				return pruneRestored(tx, seen)
			}); err != nil {
				return fmt.Errorf("failed to save archive cursor: %w", err)
			}
			res.Cursor = seen
		}
		return nil
	}
	for {
		page, err := a.cfg.Store.Changes(ctx, seen, changesPage)
		if err != nil {
			return nil, fmt.Errorf("failed to read changes: %w", err)
		}
		// Read after the page: a restore saves its changes' numbers with
		// them, so every restored row of the page is listed.
		restored, err := restoredRanges(ctx, a.cfg.Store)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			seen = m.Change
			if restored.has(m.Change) || !Uploads(m, a.cfg.Device, devices) {
				continue
			}
			recs = append(recs, Record{Message: archivable(m)})
			if m.Deleted || m.Kind == store.KindDelete {
				res.Deletions++
			}
			size += 96 + len(m.Body)
			if size >= segmentTargetBytes || len(recs) >= a.maxRecords {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		if len(page) < changesPage {
			break
		}
	}
	marks, saveMarks, err := readMarks(ctx, a.cfg.Store)
	if err != nil {
		return nil, err
	}
	recs = append(recs, marks...)
	convs, saveConvs, err := a.conversationRecords(ctx)
	if err != nil {
		return nil, err
	}
	recs = append(recs, convs...)
	if err := flush(); err != nil {
		return nil, err
	}
	if len(marks) > 0 || len(convs) > 0 {
		err := a.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			if err := saveMarks(tx); err != nil {
				return err
			}
			return saveConvs(tx)
		})
		if err != nil {
			return nil, fmt.Errorf("failed to save archive state: %w", err)
		}
	}
	return res, nil
}

// cursor reads the saved cursor.
func (a *Archiver) cursor(ctx context.Context) (store.ChangeSeq, error) {
	v, ok, err := a.cfg.Store.Setting(ctx, CursorSetting)
	if err != nil {
		return 0, fmt.Errorf("failed to read archive cursor: %w", err)
	}
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: archive cursor %q", ErrMalformed, v)
	}
	return store.ChangeSeq(n), nil
}

// readSettingPrefix prefixes the settings recording, per chat, the read
// mark last uploaded.
const readSettingPrefix = "archive.read."

// readMarks returns the records of the read marks that moved since they
// were last uploaded; save records them as uploaded once their segment is
// stored.
func readMarks(ctx context.Context, st *store.Store) (recs []Record, save func(tx *store.Tx) error, err error) {
	convs, err := st.Conversations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read conversations: %w", err)
	}
	set := map[string]string{}
	for _, c := range convs {
		if c.LastReadSeq == 0 {
			continue
		}
		name := readSettingPrefix + string(c.ID)
		v, ok, err := st.Setting(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read archive state: %w", err)
		}
		if ok {
			if up, err := strconv.ParseUint(v, 10, 64); err == nil && up >= c.LastReadSeq {
				continue
			}
		}
		recs = append(recs, Record{Read: &ReadMark{Chat: c.ID, Seq: c.LastReadSeq}})
		set[name] = strconv.FormatUint(c.LastReadSeq, 10)
	}
	save = func(tx *store.Tx) error {
		for name, v := range set {
			if err := tx.SetSetting(name, v); err != nil {
				return err
			}
		}
		return nil
	}
	return recs, save, nil
}

// putSegment seals recs under a fresh data key and id and stores the
// segment, then its key record. It returns the bytes uploaded.
func (a *Archiver) putSegment(ctx context.Context, recs []Record, e *IndexEntry) (int64, error) {
	id, err := NewSegmentID(a.cfg.Rand)
	if err != nil {
		return 0, err
	}
	var key DataKey
	if _, err := io.ReadFull(a.cfg.Rand, key[:]); err != nil {
		return 0, fmt.Errorf("failed to read randomness for data key: %w", err)
	}
	defer clear(key[:])
	e.Records = uint32(len(recs))
	seg, err := sealSegment(id, &key, recs, a.cfg.Rand)
	if err != nil {
		return 0, err
	}
	kr, err := sealKeyRecord(a.cfg.Keyring, id, &key, e, a.cfg.Rand)
	if err != nil {
		return 0, err
	}
	if err := a.cfg.Remote.Put(ctx, SegmentBlob(id), seg); err != nil {
		return 0, fmt.Errorf("failed to upload segment: %w", err)
	}
	if err := a.cfg.Remote.Put(ctx, KeyRecordBlob(id), kr); err != nil {
		return 0, fmt.Errorf("failed to upload key record: %w", err)
	}
	return int64(len(seg) + len(kr)), nil
}

// RewrapResult says what [Archiver.Rewrap] did.
type RewrapResult struct {
	// Rewrapped is the number of key records re-sealed and re-uploaded.
	Rewrapped int
}

// Rewrap re-seals every key record wrapped under an older generation under
// the keyring's current one, after a rotation. Only the small key records
// are uploaded again; segments are untouched. When it returns nil, older
// generations may be pruned from the keyring.
func (a *Archiver) Rewrap(ctx context.Context) (*RewrapResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	refs, err := loadIndex(ctx, a.cfg.Remote, a.cfg.Keyring)
	if err != nil {
		return nil, err
	}
	g, ak := a.cfg.Keyring.current()
	defer clear(ak[:])
	res := &RewrapResult{}
	for i := range refs {
		r := &refs[i]
		if r.gen == g {
			continue
		}
		kr, err := sealKeyRecordWith(g, &ak, r.id, &r.key, &r.entry, a.cfg.Rand)
		if err != nil {
			return nil, err
		}
		if err := a.cfg.Remote.Put(ctx, KeyRecordBlob(r.id), kr); err != nil {
			return nil, fmt.Errorf("failed to upload key record: %w", err)
		}
		res.Rewrapped++
	}
	return res, nil
}

// CompactResult says what [Archiver.Compact] did.
type CompactResult struct {
	// Rewritten is the number of segments replaced.
	Rewritten int
	// Erased is the number of message records whose content was removed.
	Erased int
}

// Compact rewrites every segment that still holds content of a message
// that is deleted (a tombstone anywhere in the archive, or a deletion for
// everyone from its sender), expired (its
// ExpiresAt is at or before now), an edit, reaction or receipt of such a
// message, or a message or record of a conversation whose tombstone is in
// the archive: the new segment (new id, new data key, same index entry) holds
// a tombstone in its place, and the old segment and key record are deleted
// from the Remote. Afterwards no blob of the archive holds the content of a
// deleted message. Compaction by two devices at once is safe but may
// rewrite a segment twice.
func (a *Archiver) Compact(ctx context.Context, now time.Time) (*CompactResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	refs, err := loadIndex(ctx, a.cfg.Remote, a.cfg.Keyring)
	if err != nil {
		return nil, err
	}
	// First pass: every segment's records, and the deleted set.
	all := make([][]Record, len(refs))
	deleted := map[store.MessageID]time.Time{}
	goneChats := map[store.ChatID]time.Time{}
	err = fetchSegments(ctx, a.cfg.Remote, refs, func(i int, recs []Record) error {
		all[i] = recs
		for _, r := range recs {
			if r.Conv != nil && r.Conv.Deleted {
				goneChats[r.Conv.Conv.ID] = r.Conv.Updated
			}
			m := r.Message
			if m == nil {
				continue
			}
			switch {
			case m.Deleted:
				deleted[m.ID] = m.DeletedAt
			case !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now):
				if _, ok := deleted[m.ID]; !ok {
					deleted[m.ID] = m.ExpiresAt
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A deletion for everyone deletes its target when both come from the
	// same sender, even if the target's tombstone never reached the archive.
	dels := map[store.MessageID]*store.Message{}
	for _, recs := range all {
		for _, r := range recs {
			if m := r.Message; m != nil && m.Kind == store.KindDelete && !m.Deleted && m.Sender != "" {
				dels[m.Target] = m
			}
		}
	}
	for _, recs := range all {
		for _, r := range recs {
			m := r.Message
			if m == nil || m.Deleted {
				continue
			}
			if d, ok := dels[m.ID]; ok && d.Chat == m.Chat && d.Sender == m.Sender {
				if _, done := deleted[m.ID]; !done {
					deleted[m.ID] = d.SentAt
				}
			}
		}
	}
	erase := func(m *store.Message) (time.Time, bool) {
		if m.Deleted {
			return time.Time{}, false
		}
		if at, ok := goneChats[m.Chat]; ok {
			return at, true
		}
		if at, ok := deleted[m.ID]; ok {
			return at, true
		}
		if m.Kind == store.KindEdit || m.Kind == store.KindReaction || m.Kind == store.KindReceipt {
			if at, ok := deleted[m.Target]; ok {
				return at, true
			}
		}
		return time.Time{}, false
	}
	res := &CompactResult{}
	for i, recs := range all {
		n := 0
		out := make([]Record, 0, len(recs))
		for _, r := range recs {
			if c := r.Conv; c != nil && !c.Deleted {
				if _, ok := goneChats[c.Conv.ID]; ok {
					n++ // a deleted conversation's name and members leave too
					continue
				}
			}
			if r.Message == nil {
				out = append(out, r)
				continue
			}
			if at, ok := erase(r.Message); ok {
				c := *r.Message
				tombstoneOf(&c, at)
				out = append(out, Record{Message: &c})
				n++
				continue
			}
			out = append(out, r)
		}
		if n == 0 {
			continue
		}
		e := refs[i].entry
		if _, err := a.putSegment(ctx, out, &e); err != nil {
			return nil, err
		}
		old := refs[i].id
		if err := a.cfg.Remote.Delete(ctx, KeyRecordBlob(old)); err != nil {
			return nil, fmt.Errorf("failed to delete old key record: %w", err)
		}
		if err := a.cfg.Remote.Delete(ctx, SegmentBlob(old)); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("failed to delete old segment: %w", err)
		}
		res.Rewritten++
		res.Erased += n
	}
	return res, nil
}
