package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
)

// Conversation is one chat: an MLS group and what the client knows of it.
type Conversation struct {
	ID    ChatID
	Kind  ChatKind
	Group GroupID
	// Name is the chat's name (sealed at rest).
	Name string
	// Members summarises who is in the chat, by account (sealed at rest).
	Members   []identity.AccountID
	CreatedAt time.Time
	// LastReadSeq is the server sequence number of the newest message the
	// user has read; messages after it count as unread.
	LastReadSeq uint64
	// DisappearAfter is the disappearing-message timer; zero means off.
	DisappearAfter time.Duration
	Archived       bool
	// Left is set once this account has left the chat (or was removed).
	Left bool
}

// ChatAdminsSetting names the setting holding a group's admin list: account
// ids separated by commas.
func ChatAdminsSetting(chat ChatID) string { return "chat." + string(chat) + ".admins" }

// Limits on conversation fields.
const (
	MaxChatNameLen = 1024
	MaxMembers     = 10000
)

const (
	convColumns         = `chat, group_id, kind, details, created_at, last_read_seq, disappear_ns, archived, left_chat`
	qUpsertConversation = `INSERT INTO conversations (` + convColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (chat) DO UPDATE SET group_id = excluded.group_id, kind = excluded.kind, details = excluded.details,
	created_at = excluded.created_at, last_read_seq = excluded.last_read_seq, disappear_ns = excluded.disappear_ns,
	archived = excluded.archived, left_chat = excluded.left_chat`
	qSelectConversation        = `SELECT ` + convColumns + ` FROM conversations WHERE chat = ?`
	qSelectConversationByGroup = `SELECT ` + convColumns + ` FROM conversations WHERE group_id = ?`
	qSelectConversations       = `SELECT ` + convColumns + ` FROM conversations ORDER BY created_at, chat`
	qMarkRead                  = `UPDATE conversations SET last_read_seq = MAX(last_read_seq, ?) WHERE chat = ?`
	qDeleteConversation        = `DELETE FROM conversations WHERE chat = ?`
	qDeleteChatMessages        = `DELETE FROM messages WHERE chat = ?`
	// qKeepChangeFloor records the last change number before rows are
	// deleted (see qMaxChange); the value is a plain count, not sealed.
	qKeepChangeFloor = `INSERT INTO meta (name, value) SELECT 'change_floor', COALESCE(MAX(change_seq), 0) FROM messages WHERE true
ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`
	qDeleteChatOutbox = `DELETE FROM outbox WHERE chat = ?`
	qUnreadCounts     = `SELECT c.chat, COUNT(m.rid) FROM conversations c
JOIN messages m ON m.chat = c.chat AND m.pos > c.last_read_seq AND m.pos < ?
	AND m.mine = 0 AND m.deleted_at = 0 AND m.kind IN (1, 2, 6)
GROUP BY c.chat`
)

// chatRef binds a conversation's details to its chat id and kind.
func chatRef(chat ChatID, kind ChatKind) rowRef {
	return rowRef{table: "conversations", column: "details", key: append([]byte{byte(kind)}, chat...)}
}

// PutConversation creates or replaces a conversation. Its ID must be
// ChatIDFromGroup(c.Group).
func (tx *Tx) PutConversation(c *Conversation) error {
	if c == nil || !c.Group.Valid() || c.ID != ChatIDFromGroup(c.Group) || !c.Kind.valid() {
		return invalidf("conversation needs a valid group, its derived chat id and a kind")
	}
	if len(c.Name) > MaxChatNameLen || len(c.Members) > MaxMembers || c.DisappearAfter < 0 || c.LastReadSeq > MaxSeq {
		return invalidf("conversation field out of range")
	}
	for _, m := range c.Members {
		if p, err := identity.ParseAccountID(string(m)); err != nil || p != m {
			return invalidf("member %q is not an account id", m)
		}
	}
	d := chatDetails{name: c.Name, members: c.Members}
	raw, err := d.marshal()
	if err != nil {
		return invalidf("conversation details: %v", err)
	}
	sealed, err := tx.s.seal.seal(chatRef(c.ID, c.Kind), raw)
	if err != nil {
		return err
	}
	_, err = tx.exec(qUpsertConversation, string(c.ID), []byte(c.Group), int64(c.Kind), sealed, unixNano(c.CreatedAt),
		int64(c.LastReadSeq), int64(c.DisappearAfter), c.Archived, c.Left)
	if err != nil {
		return fmt.Errorf("failed to store conversation: %w", err)
	}
	return nil
}

// MarkRead records that the user has read chat up to server sequence number
// seq. It never moves the mark backwards.
func (tx *Tx) MarkRead(chat ChatID, seq uint64) error {
	if seq > MaxSeq {
		return invalidf("sequence number out of range")
	}
	n, err := tx.exec(qMarkRead, int64(seq), string(chat))
	if err != nil {
		return fmt.Errorf("failed to mark read: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteConversation removes a conversation with its messages, queued sends,
// MLS group state and server cursor. It is for "delete this chat" after
// leaving; message ids deleted here are forgotten, so they no longer dedup.
// Their change numbers are not given again.
func (tx *Tx) DeleteConversation(chat ChatID) error {
	c, err := tx.Conversation(chat)
	if err != nil {
		return err
	}
	if _, err := tx.exec(qKeepChangeFloor); err != nil {
		return fmt.Errorf("failed to delete conversation: %w", err)
	}
	for _, q := range []struct {
		sql string
		arg any
	}{
		{qDeleteChatMessages, string(chat)},
		{qDeleteChatRcpts, string(chat)},
		{qDeleteChatOutbox, string(chat)},
		{qDeleteGroupState, []byte(c.Group)},
		{qDeleteCursor, []byte(c.Group)},
		{qDeleteConversation, string(chat)},
	} {
		if _, err := tx.exec(q.sql, q.arg); err != nil {
			return fmt.Errorf("failed to delete conversation: %w", err)
		}
	}
	return nil
}

// Conversation returns one conversation as this transaction sees it.
func (tx *Tx) Conversation(chat ChatID) (*Conversation, error) {
	return tx.s.scanConversation(tx.queryRow(qSelectConversation, string(chat)))
}

// Conversation returns one conversation, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, chat ChatID) (*Conversation, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	return s.scanConversation(q.QueryRowContext(ctx, qSelectConversation, string(chat)))
}

// ConversationByGroup returns the conversation of an MLS group, or
// ErrNotFound.
func (s *Store) ConversationByGroup(ctx context.Context, g GroupID) (*Conversation, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	return s.scanConversation(q.QueryRowContext(ctx, qSelectConversationByGroup, []byte(g)))
}

// Conversations returns every conversation, oldest first.
func (s *Store) Conversations(ctx context.Context) ([]*Conversation, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, qSelectConversations)
	if err != nil {
		return nil, fmt.Errorf("failed to list conversations: %w", err)
	}
	defer rows.Close()
	var out []*Conversation
	for rows.Next() {
		c, err := s.scanConversation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to list conversations: %w", err)
	}
	return out, nil
}

// UnreadCounts returns, for each conversation with unread messages, how
// many: text, reply and file messages from others, after the read mark, not
// deleted.
func (s *Store) UnreadCounts(ctx context.Context) (map[ChatID]int, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, qUnreadCounts, int64(pendingBase))
	if err != nil {
		return nil, fmt.Errorf("failed to count unread messages: %w", err)
	}
	defer rows.Close()
	out := map[ChatID]int{}
	for rows.Next() {
		var chat string
		var n int
		if err := rows.Scan(&chat, &n); err != nil {
			return nil, fmt.Errorf("failed to count unread messages: %w", err)
		}
		out[ChatID(chat)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to count unread messages: %w", err)
	}
	return out, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func (s *Store) scanConversation(r scanner) (*Conversation, error) {
	var (
		group, sealed                      []byte
		chatText                           string
		kind, created, lastRead, disappear int64
		archived, left                     bool
	)
	err := r.Scan(&chatText, &group, &kind, &sealed, &created, &lastRead, &disappear, &archived, &left)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read conversation: %w", err)
	}
	id := ChatID(chatText)
	if kind < 0 || kind > 255 || ChatIDFromGroup(GroupID(group)) != id {
		// The chat id is derived from the group id; a row whose group was
		// changed would route another group's messages into this chat.
		return nil, &CorruptError{Table: "conversations", Column: "group_id"}
	}
	raw, err := s.seal.open(chatRef(id, ChatKind(kind)), sealed)
	if err != nil {
		return nil, err
	}
	d, err := parseChatDetails(raw)
	if err != nil {
		return nil, &CorruptError{Table: "conversations", Column: "details", Err: err}
	}
	return &Conversation{
		ID: id, Kind: ChatKind(kind), Group: GroupID(group), Name: d.name, Members: d.members,
		CreatedAt: fromUnixNano(created), LastReadSeq: uint64(lastRead), DisappearAfter: time.Duration(disappear),
		Archived: archived, Left: left,
	}, nil
}
