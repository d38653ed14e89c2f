package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// A server restored from an older backup hands out sequence numbers again
// that it had already given to messages this store holds. The store keeps
// both: the message that arrives with a reused number takes it, and the
// message that held it (which the restored server has forgotten) is
// displaced to a position below every sequence number, in the order
// messages were displaced. A displaced message keeps its id (so a
// redelivery is still recognised), its content and state; its Seq reads 0.
// Nothing fails: a client never wedges on a server whose numbers went back.

const (
	qOccupant     = `SELECT id FROM messages WHERE chat = ? AND pos = ?`
	qNextDisplace = `SELECT COALESCE(MAX(pos), -4611686018427387904) + 1 FROM messages WHERE chat = ? AND pos < 0`
	qDisplace     = `UPDATE messages SET pos = ?, change_seq = ? WHERE chat = ? AND pos = ?`
	qKnownID      = `SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?)`
)

// Redelivered says what the store knows of a delivery of message id at
// sequence number seq of chat that the client's cursor says it already
// processed. known: the store holds id (a plain redelivery; drop it).
// Otherwise the delivery may well be new, and reused says the store holds
// another message at seq: the server was restored from an older backup and
// gives out the number again. (An unknown id with nothing at seq is
// ambiguous: a redelivery of something never stored as a message, or a
// reused number whose old holder was not stored; the client drops it.)
func (s *Store) Redelivered(ctx context.Context, chat ChatID, seq uint64, id MessageID) (known, reused bool, err error) {
	q, err := s.reader()
	if err != nil {
		return false, false, err
	}
	if err := q.QueryRowContext(ctx, qKnownID, id[:]).Scan(&known); err != nil {
		return false, false, fmt.Errorf("failed to look up message: %w", err)
	}
	if known || seq == 0 || seq > MaxSeq {
		return known, false, nil
	}
	var raw []byte
	err = q.QueryRowContext(ctx, qOccupant, string(chat), int64(seq)).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("failed to look up message: %w", err)
	}
	return false, true, nil
}

// Displaced reports whether the position is that of a message displaced
// by a reused sequence number (see [Tx.Displaced]).
func (p Position) Displaced() bool { return p < 0 }

// Displaced returns how many stored messages this transaction moved out of
// the way of a message that arrived with their sequence number (a server
// restored from an older backup reuses numbers). The caller logs it and
// may rewind its cursors.
func (tx *Tx) Displaced() int { return tx.displaced }

// displaceFor moves the message at (chat, pos) out of the way of message
// id, which arrived with that sequence number. It fails with ErrSeqTaken
// when the position holds id itself (nothing to displace).
func (tx *Tx) displaceFor(id MessageID, chat ChatID, pos Position) error {
	var raw []byte
	if err := tx.queryRow(qOccupant, string(chat), int64(pos)).Scan(&raw); err != nil {
		return fmt.Errorf("failed to read message at seq %d: %w", pos, err)
	}
	if string(raw) == string(id[:]) {
		return fmt.Errorf("%w: %s seq %d", ErrSeqTaken, chat, pos)
	}
	var to int64
	if err := tx.queryRow(qNextDisplace, string(chat)).Scan(&to); err != nil {
		return fmt.Errorf("failed to find a free position: %w", err)
	}
	if to >= 0 {
		return fmt.Errorf("%w: %s seq %d (no free displaced position)", ErrSeqTaken, chat, pos)
	}
	if err := tx.loadCounters(); err != nil {
		return err
	}
	if _, err := tx.exec(qDisplace, to, int64(tx.nextChange), string(chat), int64(pos)); err != nil {
		return fmt.Errorf("failed to displace message at seq %d: %w", pos, err)
	}
	tx.nextChange++
	tx.displaced++
	return nil
}
