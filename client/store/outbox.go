package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// OutboxID identifies a queued send; ids grow with each enqueue and are
// never reused, so they order the sends of a conversation.
type OutboxID int64

// OutboxItem is one send waiting for the server's acknowledgement. It
// survives restarts; the SDK retries it until it is acknowledged (then
// removes it, usually with [Tx.MarkSent] in the same transaction) or gives
// up on it.
type OutboxItem struct {
	ID   OutboxID
	Chat ChatID
	// Message is the message this send carries; zero for sends that are not
	// messages (a commit, say).
	Message MessageID
	// Payload is what to send, opaque to the store and sealed at rest.
	Payload     []byte
	Attempts    int
	NextAttempt time.Time
	CreatedAt   time.Time
}

// MaxPayloadSize is the largest outbox payload the store accepts.
const MaxPayloadSize = 4 << 20

const (
	outboxColumns    = `id, chat, message_id, payload, attempts, next_attempt_at, created_at`
	qInsertOutbox    = `INSERT INTO outbox (chat, message_id, payload, next_attempt_at, created_at) VALUES (?, ?, x'', ?, ?)`
	qSetOutboxSealed = `UPDATE outbox SET payload = ? WHERE id = ?`
	qOutboxDue       = `SELECT ` + outboxColumns + ` FROM outbox
WHERE id IN (SELECT MIN(id) FROM outbox GROUP BY chat) AND next_attempt_at <= ? ORDER BY id LIMIT ?`
	qOutboxChat  = `SELECT ` + outboxColumns + ` FROM outbox WHERE chat = ? ORDER BY id LIMIT ?`
	qOutboxNext  = `SELECT MIN(next_attempt_at) FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox GROUP BY chat)`
	qOutboxRetry = `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?`
	qOutboxDel   = `DELETE FROM outbox WHERE id = ?`
)

// outboxRef binds a payload to its outbox id, conversation and message, so a
// payload cannot be moved to be sent in another conversation.
func outboxRef(id OutboxID, chat ChatID, msg MessageID) rowRef {
	key := binary.BigEndian.AppendUint64(nil, uint64(id))
	key = append(key, msg[:]...)
	return rowRef{table: "outbox", column: "payload", key: append(key, chat...)}
}

// Enqueue adds a send to the outbox and returns its id (also set in item.ID).
// Put it in the transaction that stores the pending message, so the UI never
// shows a message that the outbox has lost.
func (tx *Tx) Enqueue(item *OutboxItem) (OutboxID, error) {
	if item == nil || !item.Chat.valid() || len(item.Payload) == 0 || len(item.Payload) > MaxPayloadSize {
		return 0, invalidf("outbox item needs a chat and a payload of 1..%d bytes", MaxPayloadSize)
	}
	var msg any
	if !item.Message.IsZero() {
		msg = item.Message[:]
	}
	res, err := tx.execResult(qInsertOutbox, string(item.Chat), msg, unixNano(item.NextAttempt), unixNano(item.CreatedAt))
	if err != nil {
		return 0, fmt.Errorf("failed to queue send: %w", err)
	}
	n, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("failed to queue send: %w", err)
	}
	id := OutboxID(n)
	// The id is the row key the payload is bound to, so the payload is
	// sealed once the id is known.
	sealed, err := tx.s.seal.seal(outboxRef(id, item.Chat, item.Message), item.Payload)
	if err != nil {
		return 0, err
	}
	if _, err := tx.exec(qSetOutboxSealed, sealed, n); err != nil {
		return 0, fmt.Errorf("failed to queue send: %w", err)
	}
	item.ID = id
	return id, nil
}

// RetryLater counts a failed attempt and schedules the next one.
func (tx *Tx) RetryLater(id OutboxID, next time.Time) error {
	n, err := tx.exec(qOutboxRetry, unixNano(next), int64(id))
	if err != nil {
		return fmt.Errorf("failed to reschedule send: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// RemoveFromOutbox deletes a send: it was acknowledged, or given up on.
func (tx *Tx) RemoveFromOutbox(id OutboxID) error {
	n, err := tx.exec(qOutboxDel, int64(id))
	if err != nil {
		return fmt.Errorf("failed to remove send: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// OutboxDue returns the sends to try now: the oldest queued send of each
// conversation, if its next attempt is due at now, oldest first. Sending
// only a conversation's head keeps each conversation's sends in order.
func (s *Store) OutboxDue(ctx context.Context, now time.Time, limit int) ([]*OutboxItem, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, invalidf("limit must be 1..%d", MaxPageSize)
	}
	return s.queryOutbox(ctx, qOutboxDue, unixNano(now), limit)
}

// Outbox returns up to limit queued sends of chat, in order.
func (s *Store) Outbox(ctx context.Context, chat ChatID, limit int) ([]*OutboxItem, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, invalidf("limit must be 1..%d", MaxPageSize)
	}
	return s.queryOutbox(ctx, qOutboxChat, string(chat), limit)
}

// NextOutboxAttempt returns when the earliest conversation head is due, and
// false when the outbox is empty.
func (s *Store) NextOutboxAttempt(ctx context.Context) (time.Time, bool, error) {
	q, err := s.reader()
	if err != nil {
		return time.Time{}, false, err
	}
	var next *int64
	if err := q.QueryRowContext(ctx, qOutboxNext).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("failed to read outbox: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return fromUnixNano(*next), true, nil
}

func (s *Store) queryOutbox(ctx context.Context, query string, args ...any) ([]*OutboxItem, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read outbox: %w", err)
	}
	defer rows.Close()
	var out []*OutboxItem
	for rows.Next() {
		var (
			id, attempts, next, created int64
			chat                        string
			msg, sealed                 []byte
		)
		if err := rows.Scan(&id, &chat, &msg, &sealed, &attempts, &next, &created); err != nil {
			return nil, fmt.Errorf("failed to read outbox: %w", err)
		}
		item := &OutboxItem{
			ID: OutboxID(id), Chat: ChatID(chat), Attempts: int(attempts),
			NextAttempt: fromUnixNano(next), CreatedAt: fromUnixNano(created),
		}
		if msg != nil && len(msg) != MessageIDSize {
			return nil, &CorruptError{Table: "outbox", Column: "message_id"}
		}
		copy(item.Message[:], msg)
		if item.Payload, err = s.seal.open(outboxRef(item.ID, item.Chat, item.Message), sealed); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read outbox: %w", err)
	}
	return out, nil
}
