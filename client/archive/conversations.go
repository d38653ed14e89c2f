package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/cryptobyte"
)

// ConversationRecord is a conversation as the archive holds it: what a
// restored device needs to list the chat, show its history and ask to be
// let back in (docs/protocol.md, "Rejoining after a recovery"). A record
// with Deleted set is the conversation's tombstone: it carries only the
// chat, its group and kind.
type ConversationRecord struct {
	// Conv is the conversation; LastReadSeq is not archived here (read
	// marks are records of their own).
	Conv store.Conversation
	// Admins are a group's admins (empty for other kinds).
	Admins []identity.AccountID
	// Updated orders the records of one chat: the one with the latest
	// Updated wins on restore. A device stamps an upload with its clock,
	// but always later than the record its copy is based on (the one it
	// restored, or it uploaded before), and uploads a conversation only
	// when its own copy changed: a restored record is recorded as uploaded
	// ([Restore]), so a copy that is merely restored, which may be stale,
	// never goes back to the archive to beat a newer record.
	Updated time.Time
	// Deleted marks the conversation's tombstone; deletion is final.
	Deleted bool
}

// flag bits of a conversation record.
const (
	convDeleted  uint8 = 1
	convLeft     uint8 = 2
	convArchived uint8 = 4
	convKnown          = convDeleted | convLeft | convArchived
)

// convSettingPrefix prefixes the settings recording, per chat, the
// conversation record last uploaded or restored: its digest, group and
// kind, and its update time (see [convState]).
const convSettingPrefix = "archive.conv."

func appendConversation(b *cryptobyte.Builder, r *ConversationRecord) error {
	c := &r.Conv
	if !c.Group.Valid() || c.ID != store.ChatIDFromGroup(c.Group) || c.Kind < store.ChatDirect || c.Kind > store.ChatSelf {
		return invalidf("conversation record needs a group, its chat id and a kind")
	}
	if len(c.Name) > store.MaxChatNameLen || len(c.Members) > store.MaxMembers || len(r.Admins) > store.MaxMembers || c.DisappearAfter < 0 {
		return invalidf("conversation record field out of range")
	}
	if r.Deleted && (c.Name != "" || len(c.Members) > 0 || len(r.Admins) > 0 || c.DisappearAfter != 0 || !c.CreatedAt.IsZero() || c.Left || c.Archived) {
		return invalidf("a conversation tombstone carries content")
	}
	if unixNano(r.Updated) <= 0 {
		return invalidf("conversation record without an update time")
	}
	var f uint8
	if r.Deleted {
		f |= convDeleted
	}
	if c.Left {
		f |= convLeft
	}
	if c.Archived {
		f |= convArchived
	}
	addShort(b, string(c.ID))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Group)) })
	b.AddUint8(uint8(c.Kind))
	b.AddUint8(f)
	b.AddUint64(uint64(unixNano(r.Updated)))
	b.AddUint64(uint64(unixNano(c.CreatedAt)))
	b.AddUint64(uint64(c.DisappearAfter))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Name)) })
	for _, list := range [][]identity.AccountID{c.Members, r.Admins} {
		b.AddUint16(uint16(len(list)))
		for _, a := range list {
			addShort(b, string(a))
		}
	}
	return nil
}

// parseConversation decodes a conversation record strictly.
func parseConversation(s *cryptobyte.String) (*ConversationRecord, error) {
	var chat, group, name cryptobyte.String
	var kind, flags uint8
	var updated, created, disappear uint64
	if !s.ReadUint8LengthPrefixed(&chat) || !s.ReadUint8LengthPrefixed(&group) || !s.ReadUint8(&kind) || !s.ReadUint8(&flags) ||
		!s.ReadUint64(&updated) || !s.ReadUint64(&created) || !s.ReadUint64(&disappear) || !s.ReadUint16LengthPrefixed(&name) {
		return nil, malformedf("conversation record truncated")
	}
	id, err := parseChat(chat)
	if err != nil {
		return nil, err
	}
	r := &ConversationRecord{Deleted: flags&convDeleted != 0}
	c := &r.Conv
	c.ID, c.Group, c.Kind, c.Name = id, store.GroupID(group), store.ChatKind(kind), string(name)
	c.Left, c.Archived = flags&convLeft != 0, flags&convArchived != 0
	switch {
	case !c.Group.Valid() || store.ChatIDFromGroup(c.Group) != id:
		return nil, malformedf("conversation record's group does not match its chat")
	case kind < uint8(store.ChatDirect) || kind > uint8(store.ChatSelf):
		return nil, malformedf("unknown conversation kind %d", kind)
	case flags&^convKnown != 0:
		return nil, malformedf("unknown conversation flags %#x", flags)
	case int64(updated) <= 0 || int64(created) < 0 || int64(disappear) < 0:
		return nil, malformedf("conversation time out of range")
	case len(name) > store.MaxChatNameLen:
		return nil, malformedf("conversation name over %d bytes", store.MaxChatNameLen)
	}
	r.Updated, c.CreatedAt, c.DisappearAfter = fromUnixNano(int64(updated)), fromUnixNano(int64(created)), time.Duration(disappear)
	for i := range 2 {
		var n uint16
		if !s.ReadUint16(&n) {
			return nil, malformedf("conversation record truncated")
		}
		// Each account id takes at least two bytes: do not trust n.
		if int(n) > store.MaxMembers || int(n) > len(*s)/2 {
			return nil, malformedf("conversation record with %d accounts", n)
		}
		list := make([]identity.AccountID, 0, n)
		for range n {
			var raw cryptobyte.String
			if !s.ReadUint8LengthPrefixed(&raw) {
				return nil, malformedf("conversation record truncated")
			}
			a, err := identity.ParseAccountID(string(raw))
			if err != nil || string(a) != string(raw) || len(raw) > maxIDLen {
				return nil, malformedf("bad account id in a conversation record")
			}
			list = append(list, a)
		}
		if len(list) == 0 {
			list = nil
		}
		if i == 0 {
			c.Members = list
		} else {
			r.Admins = list
		}
	}
	if r.Deleted && (c.Name != "" || c.Members != nil || r.Admins != nil || disappear != 0 || created != 0 || c.Left || c.Archived) {
		return nil, malformedf("a conversation tombstone carries content")
	}
	return r, nil
}

// recordOf returns the archived form of conv (Updated is set on upload).
func recordOf(ctx context.Context, st *store.Store, conv *store.Conversation) (*ConversationRecord, error) {
	var admins string
	if conv.Kind == store.ChatGroup {
		v, _, err := st.Setting(ctx, store.ChatAdminsSetting(conv.ID))
		if err != nil {
			return nil, fmt.Errorf("failed to read a group's admins: %w", err)
		}
		admins = v
	}
	return recordFrom(conv, admins), nil
}

// recordFrom returns the archived form of conv, whose admin list setting
// holds admins (ignored for other kinds than a group).
func recordFrom(conv *store.Conversation, admins string) *ConversationRecord {
	r := &ConversationRecord{Conv: *conv}
	r.Conv.LastReadSeq = 0
	if conv.Kind == store.ChatGroup && admins != "" {
		for _, s := range strings.Split(admins, ",") {
			if a, err := identity.ParseAccountID(s); err == nil && !slices.Contains(r.Admins, a) {
				r.Admins = append(r.Admins, a)
			}
		}
	}
	return r
}

// digestIn returns the digest of the record of chat as tx stores it, or
// ErrNotFound.
func digestIn(tx *store.Tx, chat store.ChatID) (string, error) {
	conv, err := tx.Conversation(chat)
	if err != nil {
		return "", err
	}
	var admins string
	if conv.Kind == store.ChatGroup {
		if admins, _, err = tx.Setting(store.ChatAdminsSetting(chat)); err != nil {
			return "", err
		}
	}
	return digest(recordFrom(conv, admins))
}

// digest names a record's content (its update time excluded), to upload a
// conversation again only when it changed.
func digest(r *ConversationRecord) (string, error) {
	c := *r
	c.Updated = time.Unix(0, 1)
	var b cryptobyte.Builder
	if err := appendConversation(&b, &c); err != nil {
		return "", err
	}
	raw, err := b.Bytes()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:16]), nil
}

// ConversationsPending reports whether st has conversation records or read
// marks to upload: a conversation that is new or changed (kind, name,
// members, admins, timer, left or archived) since it was last uploaded,
// the tombstone of one uploaded before that st no longer has, or a read
// mark that moved since it was last uploaded. The store's
// change feed ([store.Store.Changes]) holds messages only, so an uploader
// that waits for it alone misses a new group without messages, a leave or
// a deleted chat. The answer is read from the store itself, so a change
// made before a restart is still pending after it.
func ConversationsPending(ctx context.Context, st *store.Store) (bool, error) {
	recs, _, err := conversationRecords(ctx, st, time.Now())
	if err != nil || len(recs) > 0 {
		return len(recs) > 0, err
	}
	marks, _, err := readMarks(ctx, st)
	return len(marks) > 0, err
}

// conversationRecords returns the records of the conversations that are
// new or changed since they were last uploaded, and tombstones of those
// uploaded before that the store no longer has; save records them as
// uploaded once their segment is stored.
func (a *Archiver) conversationRecords(ctx context.Context) (recs []Record, save func(tx *store.Tx) error, err error) {
	return conversationRecords(ctx, a.cfg.Store, a.cfg.Now())
}

// conversationRecords is [Archiver.conversationRecords] on st, with now as
// the records' update time.
func conversationRecords(ctx context.Context, st *store.Store, now time.Time) (recs []Record, save func(tx *store.Tx) error, err error) {
	convs, err := st.Conversations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read conversations: %w", err)
	}
	set := map[string]string{}
	have := map[string]bool{}
	for _, conv := range convs {
		name := convSettingPrefix + string(conv.ID)
		have[name] = true
		r, err := recordOf(ctx, st, conv)
		if err != nil {
			return nil, nil, err
		}
		d, err := digest(r)
		if err != nil {
			return nil, nil, err
		}
		v, _, err := st.Setting(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read archive state: %w", err)
		}
		old, _ := parseConvState(v)
		if old.digest == d {
			continue
		}
		r.Updated = stamp(now, old.updated)
		recs = append(recs, Record{Conv: r})
		// The state also names the group and kind, for a later tombstone.
		set[name] = convState{digest: d, group: conv.Group, kind: conv.Kind, updated: r.Updated}.String()
	}
	uploaded, err := st.SettingNames(ctx, convSettingPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read archive state: %w", err)
	}
	var gone []string
	for _, name := range uploaded {
		if have[name] {
			continue
		}
		v, _, err := st.Setting(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read archive state: %w", err)
		}
		s, ok := parseConvState(v)
		if !ok {
			gone = append(gone, name) // unreadable: forget it
			continue
		}
		g := s.group
		recs = append(recs, Record{Conv: &ConversationRecord{Conv: store.Conversation{ID: store.ChatIDFromGroup(g), Group: g, Kind: s.kind},
			Updated: stamp(now, s.updated), Deleted: true}})
		gone = append(gone, name)
	}
	save = func(tx *store.Tx) error {
		for name, v := range set {
			if err := tx.SetSetting(name, v); err != nil {
				return err
			}
		}
		for _, name := range gone {
			if err := tx.DeleteSetting(name); err != nil {
				return err
			}
			chat := strings.TrimPrefix(name, convSettingPrefix)
			if err := tx.DeleteSetting(readSettingPrefix + chat); err != nil {
				return err
			}
		}
		return nil
	}
	return recs, save, nil
}

// stamp returns the update time of a record replacing one updated at
// base: now, or just after base when this device's clock is behind it, so
// the device's change always wins over the version it was based on.
func stamp(now, base time.Time) time.Time {
	if !now.After(base) {
		return base.Add(time.Nanosecond)
	}
	return now
}

// convState is the archive state of one chat (a setting under
// [convSettingPrefix]): the record this device last uploaded or restored.
type convState struct {
	digest string
	group  store.GroupID
	kind   store.ChatKind
	// updated is the record's update time; zero in state written before
	// it was kept.
	updated time.Time
}

// String encodes s as "DIGEST:GROUPHEX:KIND:UPDATEDNANOS".
func (s convState) String() string {
	return s.digest + ":" + hex.EncodeToString([]byte(s.group)) + ":" + strconv.Itoa(int(s.kind)) + ":" +
		strconv.FormatInt(unixNano(s.updated), 10)
}

// parseConvState reads an archive-state setting; ok is false if its group
// or kind is unreadable (its digest is still returned, if any). State
// written before the update time was kept has three fields.
func parseConvState(v string) (s convState, ok bool) {
	parts := strings.Split(v, ":")
	s.digest = parts[0]
	if len(parts) != 3 && len(parts) != 4 {
		return s, false
	}
	g, err := hex.DecodeString(parts[1])
	if err != nil || !store.GroupID(g).Valid() {
		return s, false
	}
	k, err := strconv.Atoi(parts[2])
	if err != nil || k < int(store.ChatDirect) || k > int(store.ChatSelf) {
		return s, false
	}
	s.group, s.kind = store.GroupID(g), store.ChatKind(k)
	if len(parts) == 4 {
		n, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || n < 0 {
			return s, false
		}
		if n > 0 {
			s.updated = fromUnixNano(n)
		}
	}
	return s, true
}

// convMerge gathers the conversation records of a restore: per chat the
// newest record, a tombstone being final.
type convMerge struct {
	latest map[store.ChatID]*ConversationRecord
}

func (m *convMerge) add(r *ConversationRecord) {
	if m.latest == nil {
		m.latest = map[store.ChatID]*ConversationRecord{}
	}
	prev, ok := m.latest[r.Conv.ID]
	switch {
	case !ok, r.Deleted && !prev.Deleted:
		m.latest[r.Conv.ID] = r
	case prev.Deleted:
	case !r.Updated.Before(prev.Updated):
		m.latest[r.Conv.ID] = r
	}
}

// deleted reports whether the archive holds chat's tombstone.
func (m *convMerge) deleted(chat store.ChatID) bool {
	r, ok := m.latest[chat]
	return ok && r.Deleted
}

// apply creates the archived conversations st does not have: listed as
// they were, without MLS state until the device is added to the group
// again (by a Welcome). A self group is restored as left: only a device
// of the account could add this one to it, and the recovered device
// starts a new one. Conversations st has are left as they are: their
// group state is newer than any archive. A conversation st deleted whose
// tombstone is not uploaded yet stays deleted. It returns how many it
// created.
//
// Each created conversation is recorded as uploaded (the digest of its
// stored form and the archived record's update time), and so is one st
// has with the same content: a restore alone uploads nothing, and a later
// change is stamped after the restored record. Uploading the restored copy
// again, stamped with the upload time, would let it beat a newer record
// another device uploaded meanwhile, for every later restore.
func (m *convMerge) apply(ctx context.Context, st *store.Store) (int, error) {
	n := 0
	err := st.Update(ctx, func(tx *store.Tx) error {
		n = 0
		for _, r := range m.latest {
			if r.Deleted {
				continue
			}
			name := convSettingPrefix + string(r.Conv.ID)
			v, hasState, err := tx.Setting(name)
			if err != nil {
				return err
			}
			state, _ := parseConvState(v)
			if local, err := digestIn(tx, r.Conv.ID); err == nil {
				d, err := digest(r)
				if err != nil || d != local || r.Updated.Before(state.updated) {
					continue // st's copy differs (it is uploaded as it is), or a later record is recorded
				}
				state = convState{digest: d, group: r.Conv.Group, kind: r.Conv.Kind, updated: r.Updated}
				if err := tx.SetSetting(name, state.String()); err != nil {
					return err
				}
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if hasState {
				continue // deleted here; its tombstone is pending
			}
			c := r.Conv
			c.Left = c.Left || c.Kind == store.ChatSelf
			if err := tx.PutConversation(&c); errors.Is(err, store.ErrInvalid) {
				continue // a record the store refuses is skipped, not fatal
			} else if err != nil {
				return err
			}
			if len(r.Admins) > 0 && c.Kind == store.ChatGroup {
				s := make([]string, len(r.Admins))
				for i, a := range r.Admins {
					s[i] = string(a)
				}
				if err := tx.SetSetting(store.ChatAdminsSetting(c.ID), strings.Join(s, ",")); err != nil {
					return err
				}
			}
			d, err := digestIn(tx, c.ID)
			if err != nil {
				return err
			}
			state = convState{digest: d, group: c.Group, kind: c.Kind, updated: r.Updated}
			if err := tx.SetSetting(name, state.String()); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("failed to merge archived conversations: %w", err)
	}
	return n, nil
}
