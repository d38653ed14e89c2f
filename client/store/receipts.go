package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/parley-im/parley/identity"
)

const (
	qReceiptTarget = `SELECT chat, mine, kind, state, deleted_at FROM messages WHERE id = ?`
	qUpsertReceipt = `INSERT INTO receipts (message, chat, reader, state) VALUES (?, ?, ?, ?)
ON CONFLICT (message, reader) DO UPDATE SET state = max(state, excluded.state)`
	qReceiptsOf    = `SELECT reader, state, expected FROM receipts WHERE message = ?`
	qExpectReceipt = `INSERT INTO receipts (message, chat, reader, state, expected) VALUES (?, ?, ?, 0, 1)
ON CONFLICT (message, reader) DO UPDATE SET expected = 1`
	qDeleteReceipts  = `DELETE FROM receipts WHERE message = ?`
	qDeleteChatRcpts = `DELETE FROM receipts WHERE chat = ?`
	qPosOf           = `SELECT chat, pos FROM messages WHERE id = ?`
	// Our shown messages not yet read by everyone, newest first, within
	// a window of positions before the read point.
	qReadCovered = `SELECT m.id FROM messages m LEFT JOIN receipts r ON r.message = m.id AND r.reader = ?
WHERE m.chat = ? AND m.pos <= ? AND m.pos > ? AND m.mine = 1 AND m.kind IN (1, 2, 6) AND m.state IN (2, 3)
AND m.deleted_at = 0 AND (r.state IS NULL OR r.state < 4) ORDER BY m.pos DESC LIMIT ?`
)

// ReadWindow is how many positions before a read receipt's target the
// receipt covers: our messages further back keep their state. It bounds
// the work one receipt causes.
const ReadWindow = 10000

// StateChange is a message of ours whose state a receipt moved.
type StateChange struct {
	ID    MessageID
	State MessageState
}

// receiptKinds are the kinds whose delivery and reading are tracked.
func receiptKind(k MessageKind) bool { return k == KindText || k == KindReply || k == KindFile }

// readerHandle is a receipt's reader column: a keyed hash of the account
// id, so the database does not say who read what.
func (s *Store) readerHandle(a identity.AccountID) string {
	return string(s.seal.handle("reader", string(a)))
}

// RecordReceipts records that the account reader has our messages ids of
// chat (state StateDelivered) or has read them (StateRead), and moves each
// message's own state forward to the furthest state every account in
// recipients has reached: for a 1:1 chat, the peer; for a group, every
// other member. Ids that are not our text, reply or file messages of chat
// (or are deleted), and readers who are not recipients, are ignored. It
// returns the messages whose state changed.
func (tx *Tx) RecordReceipts(chat ChatID, reader identity.AccountID, ids []MessageID, state MessageState, recipients []identity.AccountID) ([]StateChange, error) {
	if state != StateDelivered && state != StateRead {
		return nil, invalidf("a receipt says delivered or read, not %v", state)
	}
	need := make(map[string]bool, len(recipients))
	for _, a := range recipients {
		need[tx.s.readerHandle(a)] = true
	}
	me := tx.s.readerHandle(reader)
	if !need[me] {
		return nil, nil
	}
	var out []StateChange
	for _, id := range ids {
		var (
			c                     string
			mine                  bool
			kind, cur, deletedRaw int64
		)
		err := tx.queryRow(qReceiptTarget, id[:]).Scan(&c, &mine, &kind, &cur, &deletedRaw)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("failed to read message: %w", err)
		}
		s := MessageState(cur)
		if ChatID(c) != chat || !mine || !receiptKind(MessageKind(kind)) || deletedRaw != 0 || s == StateReceived || s == StateUndecryptable {
			continue
		}
		all := state
		if len(need) > 1 {
			// Only a group needs to remember who got how far.
			if _, err := tx.exec(qUpsertReceipt, id[:], string(chat), []byte(me), int64(state)); err != nil {
				return out, fmt.Errorf("failed to record receipt: %w", err)
			}
			if all, err = tx.allReached(id, need); err != nil {
				return out, err
			}
		}
		if all < StateDelivered || !s.forward(all) || s == all {
			continue
		}
		ch, err := tx.change()
		if err != nil {
			return out, err
		}
		if _, err := tx.exec(qSetState, int64(all), ch, id[:]); err != nil {
			return out, fmt.Errorf("failed to set message state: %w", err)
		}
		out = append(out, StateChange{ID: id, State: all})
	}
	return out, nil
}

// ExpectReceipts records, for a group message of ours, the accounts it
// was sent to (the chat's other members then): its state then waits only
// for those of them still members, not for accounts added later. With one
// recipient or none it records nothing (a 1:1 receipt moves the state
// directly).
func (tx *Tx) ExpectReceipts(chat ChatID, id MessageID, recipients []identity.AccountID) error {
	if len(recipients) < 2 {
		return nil
	}
	for _, a := range recipients {
		if _, err := tx.exec(qExpectReceipt, id[:], string(chat), []byte(tx.s.readerHandle(a))); err != nil {
			return fmt.Errorf("failed to record recipients: %w", err)
		}
	}
	return nil
}

// allReached returns the state every account that must acknowledge our
// message id has reached (0 if one has no receipt yet): the accounts in
// need (the current recipients) that it was sent to, if that was recorded
// (ExpectReceipts), else all of need.
func (tx *Tx) allReached(id MessageID, need map[string]bool) (MessageState, error) {
	rows, err := tx.query(qReceiptsOf, id[:])
	if err != nil {
		return 0, fmt.Errorf("failed to read receipts: %w", err)
	}
	defer rows.Close()
	got := make(map[string]MessageState)
	expected := make(map[string]bool)
	for rows.Next() {
		var reader []byte
		var st int64
		var exp bool
		if err := rows.Scan(&reader, &st, &exp); err != nil {
			return 0, fmt.Errorf("failed to read receipts: %w", err)
		}
		got[string(reader)] = MessageState(st)
		if exp && need[string(reader)] {
			expected[string(reader)] = true
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("failed to read receipts: %w", err)
	}
	wait := need
	if len(expected) > 0 {
		wait = expected
	}
	lowest := StateRead
	for r := range wait {
		lowest = min(lowest, got[r])
	}
	return lowest, nil
}

// ReadCovered returns our messages of chat that a read receipt of reader
// for upTo covers: up to limit (1..MaxPageSize) of our text, reply and
// file messages positioned at or before upTo (within ReadWindow
// positions), not yet read by everyone nor by reader, newest first. upTo
// may be anyone's message; if it is not stored in chat, there are none.
func (tx *Tx) ReadCovered(chat ChatID, upTo MessageID, reader identity.AccountID, limit int) ([]MessageID, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, invalidf("limit must be 1..%d", MaxPageSize)
	}
	var c string
	var pos int64
	err := tx.queryRow(qPosOf, upTo[:]).Scan(&c, &pos)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (ChatID(c) != chat || Position(pos).Pending())) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read message: %w", err)
	}
	rows, err := tx.query(qReadCovered, []byte(tx.s.readerHandle(reader)), string(chat), pos, pos-ReadWindow, limit)
	if err != nil {
		return nil, fmt.Errorf("failed to find read messages: %w", err)
	}
	defer rows.Close()
	var out []MessageID
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("failed to find read messages: %w", err)
		}
		if len(raw) != MessageIDSize {
			return nil, &CorruptError{Table: "messages", Column: "id"}
		}
		var id MessageID
		copy(id[:], raw)
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to find read messages: %w", err)
	}
	return out, nil
}
