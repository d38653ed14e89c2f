package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
)

// Message is one message of a conversation, as the client stores it.
//
// Edits, deletions and reactions are messages too (with a Target); the
// store applies edits and deletions to their target as they arrive (or when
// the target arrives later), so the target keeps its place in the order.
type Message struct {
	ID   MessageID
	Chat ChatID
	// Seq is the server's sequence number in the conversation; 0 while a
	// message of ours is pending.
	Seq uint64
	// Position orders the conversation's messages; set by the store.
	Position Position
	// Sender and SenderDevice say who sent it (sealed at rest).
	Sender       identity.AccountID
	SenderDevice identity.DeviceID
	// Mine is set for messages sent by this account (from any of its devices).
	Mine bool
	Kind MessageKind
	// Body is the message content, opaque to the store (sealed at rest).
	Body []byte
	// Target is the message replied to, edited, deleted, reacted to or
	// receipted; zero if none.
	Target     MessageID
	SentAt     time.Time
	ReceivedAt time.Time
	State      MessageState
	// ExpiresAt is when a disappearing message is deleted; zero if never.
	ExpiresAt time.Time
	// EditedAt is the send time of the edit now shown; zero if not edited.
	EditedAt time.Time
	// Deleted marks a tombstone: the message was deleted or expired. Its
	// id, conversation and position remain (for dedup and for the history
	// archive); sender, body and times are gone.
	Deleted   bool
	DeletedAt time.Time
	// Change is the store's change number of the row's last change; see
	// [Store.Changes].
	Change ChangeSeq
}

// MaxBodySize is the largest message body the store accepts.
const MaxBodySize = 1 << 20

// MaxPageSize is the largest number of messages one query returns.
const MaxPageSize = 1000

// MessageRef names a message.
type MessageRef struct {
	Chat ChatID
	ID   MessageID
}

const (
	msgColumns     = `id, chat, pos, kind, mine, target, content, sent_at, received_at, state, expires_at, edited_at, deleted_at, change_seq`
	qInsertMessage = `INSERT INTO messages (id, chat, pos, kind, mine, target, content, sent_at, received_at, state, expires_at, deleted_at, change_seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	qSelectMessage   = `SELECT ` + msgColumns + ` FROM messages WHERE id = ?`
	qSelectEditState = `SELECT chat, pos, kind, mine, target, content, deleted_at, edit_pos FROM messages WHERE id = ?`
	qAdoptSeq        = `UPDATE messages SET pos = ?, state = CASE WHEN state IN (1, 5) THEN 2 ELSE state END, change_seq = ? WHERE id = ? AND pos >= ?`
	qSetState        = `UPDATE messages SET state = ?, change_seq = ? WHERE id = ?`
	qSelectState     = `SELECT state FROM messages WHERE id = ?`
	qSelectChatOf    = `SELECT chat FROM messages WHERE id = ?`
	qPosTaken        = `SELECT COUNT(*) FROM messages WHERE chat = ? AND pos = ?`
	qApplyEdit       = `UPDATE messages SET content = ?, edited_at = ?, edit_pos = ?, change_seq = ? WHERE id = ?`
	qTombstone       = `UPDATE messages SET content = NULL, deleted_at = ?, expires_at = 0, edited_at = 0, sent_at = 0, received_at = 0, change_seq = ?
WHERE id = ?`
	qEventsOf      = `SELECT id FROM messages INDEXED BY messages_target WHERE target = ? AND chat = ? AND kind IN (3, 5, 8) AND deleted_at = 0`
	qHasWaiting    = `SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_target WHERE target = ? AND chat = ? AND kind IN (3, 4) AND deleted_at = 0)`
	qPendingEvents = `SELECT ` + msgColumns + ` FROM messages INDEXED BY messages_target WHERE target = ? AND chat = ? AND kind IN (3, 4) AND deleted_at = 0 ORDER BY pos`
	qHistory       = `SELECT ` + msgColumns + ` FROM messages
WHERE chat = ? AND pos < ? AND kind IN (1, 2, 6, 7) AND deleted_at = 0 ORDER BY pos DESC LIMIT ?`
	qHistoryAll = `SELECT ` + msgColumns + ` FROM messages
WHERE chat = ? AND pos < ? AND kind IN (1, 2, 6, 7) ORDER BY pos DESC LIMIT ?`
	qChanges   = `SELECT ` + msgColumns + ` FROM messages WHERE change_seq > ? ORDER BY change_seq LIMIT ?`
	qScan      = `SELECT ` + msgColumns + ` FROM messages WHERE chat = ? AND pos > ? ORDER BY pos LIMIT ?`
	qReactions = `SELECT ` + msgColumns + ` FROM messages INDEXED BY messages_target WHERE target = ? AND chat = ? AND kind = 5 AND deleted_at = 0 ORDER BY pos`
)

// contentRef binds a message's sealed content to its id and to the columns
// that never change: chat, kind, mine and target.
func contentRef(id MessageID, chat ChatID, kind MessageKind, mine bool, target MessageID) rowRef {
	key := make([]byte, 0, 2*MessageIDSize+len(chat)+2)
	key = append(key, id[:]...)
	key = append(key, target[:]...)
	var m byte
	if mine {
		m = 1
	}
	key = append(key, byte(kind), m)
	key = append(key, chat...)
	return rowRef{table: "messages", column: "content", key: key}
}

func (m *Message) validate() error {
	switch {
	case m.ID.IsZero():
		return invalidf("message id is zero")
	case !m.Chat.valid():
		return invalidf("chat id %q", m.Chat)
	case !m.Kind.valid():
		return invalidf("message kind %d", m.Kind)
	case !m.State.valid():
		return invalidf("message state %d", m.State)
	case m.Kind.needsTarget() && m.Target.IsZero():
		return invalidf("a %s message needs a target", m.Kind)
	case m.Seq > MaxSeq:
		return invalidf("sequence number out of range")
	case m.Seq == 0 && !m.Mine:
		return invalidf("a message from someone else needs a server sequence number")
	case len(m.Body) > MaxBodySize:
		return invalidf("message body over %d bytes", MaxBodySize)
	}
	if m.Sender != "" {
		if p, err := identity.ParseAccountID(string(m.Sender)); err != nil || p != m.Sender {
			return invalidf("sender %q is not an account id", m.Sender)
		}
	}
	return nil
}

// InsertMessage stores m and reports whether it was new. A message whose id
// is already stored is not stored again (inserted is false: "already had
// it"), with one exception: if the stored copy is our pending message and m
// carries the server's sequence number, the stored copy takes that number.
//
// m.Seq == 0 stores a pending message of ours at a local position after
// every ordered message; [Tx.MarkSent] moves it to its sequence number.
// Edits and deletions are applied to their target when it is in the same
// conversation and was sent by the same account; otherwise they wait for
// the target to arrive. m.Position is set on return.
func (tx *Tx) InsertMessage(m *Message) (inserted bool, err error) {
	if m == nil {
		return false, invalidf("nil message")
	}
	if err := m.validate(); err != nil {
		return false, err
	}
	if err := tx.loadCounters(); err != nil {
		return false, err
	}
	pos := Position(m.Seq)
	if m.Seq == 0 {
		pos = tx.nextPending
	}
	var content any
	var deletedAt int64
	if m.Deleted {
		deletedAt = max(unixNano(m.DeletedAt), 1)
	} else {
		c := messageContent{sender: m.Sender, device: m.SenderDevice, body: m.Body}
		raw, err := c.marshal()
		if err != nil {
			return false, invalidf("message content: %v", err)
		}
		if content, err = tx.s.seal.seal(contentRef(m.ID, m.Chat, m.Kind, m.Mine, m.Target), raw); err != nil {
			return false, err
		}
	}
	var target any
	if !m.Target.IsZero() {
		target = m.Target[:]
	}
	insert := func() (int64, error) {
		return tx.exec(qInsertMessage, m.ID[:], string(m.Chat), int64(pos), int64(m.Kind), m.Mine, target, content,
			unixNano(m.SentAt), unixNano(m.ReceivedAt), int64(m.State), unixNano(m.ExpiresAt), deletedAt, int64(tx.nextChange))
	}
	n, err := insert()
	if err != nil {
		err = tx.classifyInsertError(err, m.Chat, pos)
		if m.Seq > 0 && errors.Is(err, ErrSeqTaken) {
			if err = tx.displaceFor(m.ID, m.Chat, pos); err == nil {
				n, err = insert()
			}
		}
		if err != nil {
			return false, err
		}
	}
	if n == 0 {
		if m.Seq > 0 {
			if err := tx.adoptSeq(m.ID, m.Seq); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	m.Change = tx.nextChange
	tx.nextChange++
	if m.Seq == 0 {
		tx.nextPending++
	}
	m.Position = pos
	if m.Deleted {
		return true, nil
	}
	switch m.Kind {
	case KindEdit:
		err = tx.applyEdit(m, pos)
	case KindDelete:
		err = tx.applyDelete(m)
	case KindReaction, KindReceipt:
	default:
		err = tx.applyWaitingEvents(m)
	}
	return true, err
}

// editTarget is what applying an event needs to know of its target.
type editTarget struct {
	chat    ChatID
	pos     Position
	kind    MessageKind
	mine    bool
	target  MessageID
	content []byte
	deleted bool
	editPos Position
}

// loadTarget returns the target's state, or nil if it is not stored.
func (tx *Tx) loadTarget(id MessageID) (*editTarget, error) {
	var t editTarget
	var chat string
	var pos, kind, deletedAt, editPos int64
	var target []byte
	err := tx.queryRow(qSelectEditState, id[:]).Scan(&chat, &pos, &kind, &t.mine, &target, &t.content, &deletedAt, &editPos)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read message: %w", err)
	}
	t.chat, t.pos, t.kind, t.deleted, t.editPos = ChatID(chat), Position(pos), MessageKind(kind), deletedAt != 0, Position(editPos)
	copy(t.target[:], target)
	return &t, nil
}

// targetSender opens the target's content.
func (tx *Tx) targetContent(id MessageID, t *editTarget) (*messageContent, error) {
	raw, err := tx.s.seal.open(contentRef(id, t.chat, t.kind, t.mine, t.target), t.content)
	if err != nil {
		return nil, err
	}
	c, err := parseMessageContent(raw)
	if err != nil {
		return nil, &CorruptError{Table: "messages", Column: "content", Err: err}
	}
	return c, nil
}

// applyEdit replaces the target's body with the edit's, if the edit is newer
// than the one shown and comes from the target's sender.
func (tx *Tx) applyEdit(edit *Message, editPos Position) error {
	t, err := tx.loadTarget(edit.Target)
	if err != nil || t == nil || t.chat != edit.Chat || t.kind.IsEvent() || t.deleted || t.editPos >= editPos {
		return err
	}
	c, err := tx.targetContent(edit.Target, t)
	if err != nil {
		return err
	}
	if c.sender == "" || c.sender != edit.Sender {
		return nil
	}
	c.body = edit.Body
	raw, err := c.marshal()
	if err != nil {
		return invalidf("message content: %v", err)
	}
	sealed, err := tx.s.seal.seal(contentRef(edit.Target, t.chat, t.kind, t.mine, t.target), raw)
	if err != nil {
		return err
	}
	ch, err := tx.change()
	if err != nil {
		return err
	}
	if _, err := tx.exec(qApplyEdit, sealed, max(unixNano(edit.SentAt), 1), int64(editPos), ch, edit.Target[:]); err != nil {
		return fmt.Errorf("failed to apply edit: %w", err)
	}
	return nil
}

// applyDelete turns the target into a tombstone if the deletion comes from
// the target's sender.
func (tx *Tx) applyDelete(del *Message) error {
	t, err := tx.loadTarget(del.Target)
	if err != nil || t == nil || t.chat != del.Chat || t.deleted {
		return err
	}
	c, err := tx.targetContent(del.Target, t)
	if err != nil {
		return err
	}
	if c.sender == "" || c.sender != del.Sender {
		return nil
	}
	return tx.tombstone(del.Chat, del.Target, del.SentAt)
}

// applyWaitingEvents applies edits and deletions that arrived before m.
func (tx *Tx) applyWaitingEvents(m *Message) error {
	// Almost always there are none; asking costs less than reading them.
	var waiting bool
	if err := tx.queryRow(qHasWaiting, m.ID[:], string(m.Chat)).Scan(&waiting); err != nil {
		return fmt.Errorf("failed to look up waiting edits: %w", err)
	}
	if !waiting {
		return nil
	}
	rows, err := tx.query(qPendingEvents, m.ID[:], string(m.Chat))
	if err != nil {
		return fmt.Errorf("failed to look up waiting edits: %w", err)
	}
	var events []*Message
	for rows.Next() {
		e, err := tx.s.scanMessage(rows)
		if err != nil {
			rows.Close()
			return err
		}
		events = append(events, e)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("failed to look up waiting edits: %w", err)
	}
	for _, e := range events {
		if e.Kind == KindDelete {
			err = tx.applyDelete(e)
		} else {
			err = tx.applyEdit(e, e.Position)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tombstone deletes a message's content, and the edits, reactions and
// receipts that point at it, keeping the rows for dedup and order.
func (tx *Tx) tombstone(chat ChatID, id MessageID, at time.Time) error {
	ts := max(unixNano(at), 1)
	ch, err := tx.change()
	if err != nil {
		return err
	}
	if _, err := tx.exec(qTombstone, ts, ch, id[:]); err != nil {
		return fmt.Errorf("failed to delete message: %w", err)
	}
	if _, err := tx.exec(qDeleteReceipts, id[:]); err != nil {
		return fmt.Errorf("failed to delete message: %w", err)
	}
	rows, err := tx.query(qEventsOf, id[:], string(chat))
	if err != nil {
		return fmt.Errorf("failed to delete message: %w", err)
	}
	var events [][]byte
	for rows.Next() {
		var e []byte
		if err := rows.Scan(&e); err != nil {
			rows.Close()
			return fmt.Errorf("failed to delete message: %w", err)
		}
		events = append(events, e)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("failed to delete message: %w", err)
	}
	// One statement per row, so that each changed row gets its own change
	// number.
	for _, e := range events {
		ch, err := tx.change()
		if err != nil {
			return err
		}
		if _, err := tx.exec(qTombstone, ts, ch, e); err != nil {
			return fmt.Errorf("failed to delete message: %w", err)
		}
	}
	return nil
}

// DeleteMessage deletes a message locally (delete for me): it becomes a
// tombstone. Deleting for everyone is sending a KindDelete message.
func (tx *Tx) DeleteMessage(id MessageID, at time.Time) error {
	t, err := tx.loadTarget(id)
	if err != nil {
		return err
	}
	if t == nil {
		return ErrNotFound
	}
	return tx.tombstone(t.chat, id, at)
}

// MarkSent records the server's sequence number for our pending message and
// sets its state to sent (a failed message that the server did accept is
// sent too). It is a no-op for a message already ordered.
func (tx *Tx) MarkSent(id MessageID, seq uint64) error {
	_, err := tx.MarkSentChanged(id, seq)
	return err
}

// MarkSentChanged is [Tx.MarkSent], reporting whether the message moved
// from pending (or failed) to sent.
func (tx *Tx) MarkSentChanged(id MessageID, seq uint64) (changed bool, err error) {
	if seq == 0 || seq > MaxSeq {
		return false, invalidf("sequence number out of range")
	}
	var state int64
	if err := tx.queryRow(qSelectState, id[:]).Scan(&state); errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	} else if err != nil {
		return false, fmt.Errorf("failed to read message: %w", err)
	}
	return tx.adoptSeqChanged(id, seq)
}

// classifyInsertError turns a failed insert or move into ErrSeqTaken when
// the position is held by another message.
func (tx *Tx) classifyInsertError(err error, chat ChatID, pos Position) error {
	var n int
	if qerr := tx.queryRow(qPosTaken, string(chat), int64(pos)).Scan(&n); qerr == nil && n > 0 {
		return fmt.Errorf("%w: %s seq %d", ErrSeqTaken, chat, pos)
	}
	return fmt.Errorf("failed to store message: %w", err)
}

// adoptSeq moves our pending message to the server's sequence number.
func (tx *Tx) adoptSeq(id MessageID, seq uint64) error {
	_, err := tx.adoptSeqChanged(id, seq)
	return err
}

// adoptSeqChanged is adoptSeq, reporting whether the message moved (a
// message at a pending position is pending or failed, and becomes sent).
func (tx *Tx) adoptSeqChanged(id MessageID, seq uint64) (bool, error) {
	if err := tx.loadCounters(); err != nil {
		return false, err
	}
	n, err := tx.exec(qAdoptSeq, int64(seq), int64(tx.nextChange), id[:], int64(pendingBase))
	if err != nil {
		var chat string
		if qerr := tx.queryRow(qSelectChatOf, id[:]).Scan(&chat); qerr != nil {
			return false, fmt.Errorf("failed to record sequence number: %w", err)
		}
		err = tx.classifyInsertError(err, ChatID(chat), Position(seq))
		if !errors.Is(err, ErrSeqTaken) {
			return false, err
		}
		if err := tx.displaceFor(id, ChatID(chat), Position(seq)); err != nil {
			return false, err
		}
		if n, err = tx.exec(qAdoptSeq, int64(seq), int64(tx.nextChange), id[:], int64(pendingBase)); err != nil {
			return false, tx.classifyInsertError(err, ChatID(chat), Position(seq))
		}
	}
	if n > 0 {
		tx.nextChange++
	}
	return n > 0, nil
}

// change returns a fresh change number for one changed row.
func (tx *Tx) change() (int64, error) {
	if err := tx.loadCounters(); err != nil {
		return 0, err
	}
	c := tx.nextChange
	tx.nextChange++
	return int64(c), nil
}

// SetMessageState changes a message's state. Sent, delivered and read never
// move backwards: asking for that is a no-op.
func (tx *Tx) SetMessageState(id MessageID, state MessageState) error {
	_, err := tx.AdvanceMessageState(id, state)
	return err
}

// AdvanceMessageState is [Tx.SetMessageState], reporting whether the state
// changed.
func (tx *Tx) AdvanceMessageState(id MessageID, state MessageState) (changed bool, err error) {
	if !state.valid() {
		return false, invalidf("message state %d", state)
	}
	var cur int64
	if err := tx.queryRow(qSelectState, id[:]).Scan(&cur); errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	} else if err != nil {
		return false, fmt.Errorf("failed to read message: %w", err)
	}
	if !MessageState(cur).forward(state) || MessageState(cur) == state {
		return false, nil
	}
	ch, err := tx.change()
	if err != nil {
		return false, err
	}
	if _, err := tx.exec(qSetState, int64(state), ch, id[:]); err != nil {
		return false, fmt.Errorf("failed to set message state: %w", err)
	}
	return true, nil
}

// Message returns one message as this transaction sees it.
func (tx *Tx) Message(id MessageID) (*Message, error) {
	return tx.s.scanMessage(tx.queryRow(qSelectMessage, id[:]))
}

// Message returns one message, or ErrNotFound.
func (s *Store) Message(ctx context.Context, id MessageID) (*Message, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	return s.scanMessage(q.QueryRowContext(ctx, qSelectMessage, id[:]))
}

// HistoryQuery selects a page of a conversation's history.
type HistoryQuery struct {
	// Before returns messages positioned before it; zero means from the
	// newest (pending messages included).
	Before Position
	// Limit is the page size, 1..MaxPageSize.
	Limit int
	// IncludeDeleted returns tombstones too, for "message deleted" markers.
	IncludeDeleted bool
}

// HistoryPage is one page of history, oldest first.
type HistoryPage struct {
	Messages []*Message
	// More is set when older messages exist; pass Messages[0].Position as
	// the next query's Before.
	More bool
}

// History returns the newest Limit shown messages of chat before q.Before,
// oldest first, in server order. Events (edits, deletions, reactions,
// receipts) are not returned: they are applied to their targets.
func (s *Store) History(ctx context.Context, chat ChatID, q HistoryQuery) (*HistoryPage, error) {
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return nil, invalidf("history limit must be 1..%d", MaxPageSize)
	}
	before := q.Before
	if before == 0 {
		before = Position(1<<63 - 1)
	}
	query := qHistory
	if q.IncludeDeleted {
		query = qHistoryAll
	}
	msgs, err := s.queryMessages(ctx, query, string(chat), int64(before), q.Limit+1)
	if err != nil {
		return nil, err
	}
	page := &HistoryPage{}
	if len(msgs) > q.Limit {
		page.More = true
		msgs = msgs[:q.Limit]
	}
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	page.Messages = msgs
	return page, nil
}

// Scan returns up to limit rows of chat positioned after after, in order:
// every kind, tombstones and pending messages included. It is the full
// record of a conversation, for the history archive.
func (s *Store) Scan(ctx context.Context, chat ChatID, after Position, limit int) ([]*Message, error) {
	if limit < 1 || limit > MaxPageSize || after < 0 {
		return nil, invalidf("scan limit must be 1..%d", MaxPageSize)
	}
	return s.queryMessages(ctx, qScan, string(chat), int64(after), limit)
}

// ChangeSeq numbers changes to message rows. Every insert, acknowledgement,
// state change, applied edit and deletion gives the row it changes the next
// number, so the numbers order all changes made in this store.
type ChangeSeq int64

// Changes returns up to limit messages whose rows changed after the change
// numbered after, in change order, each in its current form (tombstones
// included). A consumer that keeps the last Change it handled sees every
// later insert, edit and deletion exactly once per change: the feed the
// history archive uploads from. Rows removed by DeleteConversation leave no
// trace in it.
func (s *Store) Changes(ctx context.Context, after ChangeSeq, limit int) ([]*Message, error) {
	if limit < 1 || limit > MaxPageSize || after < 0 {
		return nil, invalidf("changes limit must be 1..%d", MaxPageSize)
	}
	return s.queryMessages(ctx, qChanges, int64(after), limit)
}

// Reaction is one account's current reaction to a message.
type Reaction struct {
	Sender identity.AccountID
	Body   []byte
	// Message is the id of the reaction message now in effect.
	Message MessageID
}

// Reactions returns the reactions to target: for each account its latest
// reaction, leaving out accounts whose latest reaction is empty (withdrawn).
func (s *Store) Reactions(ctx context.Context, chat ChatID, target MessageID) ([]Reaction, error) {
	msgs, err := s.queryMessages(ctx, qReactions, target[:], string(chat))
	if err != nil {
		return nil, err
	}
	latest := map[identity.AccountID]int{}
	var order []identity.AccountID
	for i, m := range msgs {
		if _, ok := latest[m.Sender]; !ok {
			order = append(order, m.Sender)
		}
		latest[m.Sender] = i
	}
	var out []Reaction
	for _, a := range order {
		m := msgs[latest[a]]
		if len(m.Body) > 0 {
			out = append(out, Reaction{Sender: a, Body: m.Body, Message: m.ID})
		}
	}
	return out, nil
}

func (s *Store) queryMessages(ctx context.Context, query string, args ...any) ([]*Message, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read messages: %w", err)
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := s.scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read messages: %w", err)
	}
	return out, nil
}

func (s *Store) scanMessage(r scanner) (*Message, error) {
	var (
		id, target, content                                                     []byte
		chat                                                                    string
		pos, kind, sent, received, state, expires, edited, deletedAtRaw, change int64
		mine                                                                    bool
	)
	err := r.Scan(&id, &chat, &pos, &kind, &mine, &target, &content, &sent, &received, &state, &expires, &edited, &deletedAtRaw, &change)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read message: %w", err)
	}
	if len(id) != MessageIDSize || (target != nil && len(target) != MessageIDSize) {
		return nil, &CorruptError{Table: "messages", Column: "id"}
	}
	m := &Message{
		Chat: ChatID(chat), Position: Position(pos), Mine: mine, Kind: MessageKind(kind),
		SentAt: fromUnixNano(sent), ReceivedAt: fromUnixNano(received), State: MessageState(state),
		ExpiresAt: fromUnixNano(expires), EditedAt: fromUnixNano(edited),
		Deleted: deletedAtRaw != 0, DeletedAt: fromUnixNano(deletedAtRaw), Change: ChangeSeq(change),
	}
	copy(m.ID[:], id)
	copy(m.Target[:], target)
	if m.Position > 0 && !m.Position.Pending() {
		m.Seq = uint64(m.Position)
	}
	if content != nil {
		raw, err := s.seal.open(contentRef(m.ID, m.Chat, m.Kind, m.Mine, m.Target), content)
		if err != nil {
			return nil, err
		}
		c, err := parseMessageContent(raw)
		if err != nil {
			return nil, &CorruptError{Table: "messages", Column: "content", Err: err}
		}
		m.Sender, m.SenderDevice, m.Body = c.sender, c.device, c.body
	}
	return m, nil
}
