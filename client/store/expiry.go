package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const (
	qExpired    = `SELECT id, chat FROM messages WHERE expires_at > 0 AND expires_at <= ? ORDER BY expires_at LIMIT ?`
	qNextExpiry = `SELECT MIN(expires_at) FROM messages WHERE expires_at > 0`
)

// ExpireMessages deletes up to limit disappearing messages whose ExpiresAt
// is at or before now, and returns which. They become tombstones like
// deleted messages: content and times are erased (secure_delete overwrites
// the freed bytes), the id stays so a redelivered copy is still a duplicate.
// Call it again while it returns limit messages.
func (tx *Tx) ExpireMessages(now time.Time, limit int) ([]MessageRef, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, invalidf("limit must be 1..%d", MaxPageSize)
	}
	rows, err := tx.query(qExpired, unixNano(now), limit)
	if err != nil {
		return nil, fmt.Errorf("failed to find expired messages: %w", err)
	}
	var out []MessageRef
	for rows.Next() {
		var id []byte
		var chat string
		if err := rows.Scan(&id, &chat); err != nil {
			rows.Close()
			return nil, fmt.Errorf("failed to find expired messages: %w", err)
		}
		if len(id) != MessageIDSize {
			rows.Close()
			return nil, &CorruptError{Table: "messages", Column: "id"}
		}
		ref := MessageRef{Chat: ChatID(chat)}
		copy(ref.ID[:], id)
		out = append(out, ref)
	}
	err = errors.Join(rows.Err(), rows.Close())
	if err != nil {
		return nil, fmt.Errorf("failed to find expired messages: %w", err)
	}
	for _, r := range out {
		if err := tx.tombstone(r.Chat, r.ID, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NextExpiry returns the earliest ExpiresAt of any stored message, and false
// if none will expire; the SDK sets its sweep timer from it.
func (s *Store) NextExpiry(ctx context.Context) (time.Time, bool, error) {
	q, err := s.reader()
	if err != nil {
		return time.Time{}, false, err
	}
	var next *int64
	if err := q.QueryRowContext(ctx, qNextExpiry).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("failed to read next expiry: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return fromUnixNano(*next), true, nil
}
