package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GroupState is the serialized state of one MLS group (its secrets
// included), opaque to the store and sealed at rest.
type GroupState []byte

const (
	qUpsertGroupState = `INSERT INTO group_state (group_id, state, updated_at) VALUES (?, ?, ?)
ON CONFLICT (group_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
	qSelectGroupState = `SELECT state FROM group_state WHERE group_id = ?`
	qSelectGroups     = `SELECT group_id FROM group_state ORDER BY group_id`
	qDeleteGroupState = `DELETE FROM group_state WHERE group_id = ?`

	qAdvanceCursor = `INSERT INTO cursors (group_id, seq) VALUES (?, ?)
ON CONFLICT (group_id) DO UPDATE SET seq = MAX(seq, excluded.seq)`
	qRewindCursor = `UPDATE cursors SET seq = ? WHERE group_id = ? AND seq > ?`
	qSelectCursor = `SELECT seq FROM cursors WHERE group_id = ?`
	qDeleteCursor = `DELETE FROM cursors WHERE group_id = ?`
)

func groupStateRef(g GroupID) rowRef {
	return rowRef{table: "group_state", column: "state", key: []byte(g)}
}

// PutGroupState replaces the state of group g. Put it in the same
// transaction as the messages its processing produced (see [Batch]), so a
// crash never keeps one without the other.
func (tx *Tx) PutGroupState(g GroupID, state GroupState, now time.Time) error {
	if !g.Valid() || len(state) == 0 {
		return invalidf("group state needs a group id and a state")
	}
	sealed, err := tx.s.seal.seal(groupStateRef(g), state)
	if err != nil {
		return err
	}
	if _, err := tx.exec(qUpsertGroupState, []byte(g), sealed, unixNano(now)); err != nil {
		return fmt.Errorf("failed to store group state: %w", err)
	}
	return nil
}

// DeleteGroupState forgets group g's state (after leaving it).
func (tx *Tx) DeleteGroupState(g GroupID) error {
	if _, err := tx.exec(qDeleteGroupState, []byte(g)); err != nil {
		return fmt.Errorf("failed to delete group state: %w", err)
	}
	return nil
}

// GroupState returns group g's state as this transaction sees it.
func (tx *Tx) GroupState(g GroupID) (GroupState, error) {
	return tx.s.scanGroupState(g, tx.queryRow(qSelectGroupState, []byte(g)))
}

// GroupState returns group g's state, or ErrNotFound.
func (s *Store) GroupState(ctx context.Context, g GroupID) (GroupState, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	return s.scanGroupState(g, q.QueryRowContext(ctx, qSelectGroupState, []byte(g)))
}

func (s *Store) scanGroupState(g GroupID, r scanner) (GroupState, error) {
	var sealed []byte
	if err := r.Scan(&sealed); errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("failed to read group state: %w", err)
	}
	return s.seal.open(groupStateRef(g), sealed)
}

// Groups returns the ids of every group with a stored state.
func (s *Store) Groups(ctx context.Context) ([]GroupID, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, qSelectGroups)
	if err != nil {
		return nil, fmt.Errorf("failed to list groups: %w", err)
	}
	defer rows.Close()
	var out []GroupID
	for rows.Next() {
		var g []byte
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("failed to list groups: %w", err)
		}
		out = append(out, GroupID(g))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to list groups: %w", err)
	}
	return out, nil
}

// AdvanceCursor records that the client has processed stream up to server
// sequence number seq. The cursor never moves backwards.
func (tx *Tx) AdvanceCursor(stream Stream, seq uint64) error {
	if seq > MaxSeq || (stream.Group != "" && !stream.Group.Valid()) {
		return invalidf("cursor out of range")
	}
	if _, err := tx.exec(qAdvanceCursor, []byte(stream.Group), int64(seq)); err != nil {
		return fmt.Errorf("failed to advance cursor: %w", err)
	}
	return nil
}

// RewindCursor moves stream's cursor back to seq if it is past it: the
// server's log went back (it was restored from an older backup, see
// [Tx.Displaced]) and what it now holds after seq is to be fetched again.
// It reports whether the cursor moved.
func (tx *Tx) RewindCursor(stream Stream, seq uint64) (bool, error) {
	if seq > MaxSeq || (stream.Group != "" && !stream.Group.Valid()) {
		return false, invalidf("cursor out of range")
	}
	n, err := tx.exec(qRewindCursor, int64(seq), []byte(stream.Group), int64(seq))
	if err != nil {
		return false, fmt.Errorf("failed to rewind cursor: %w", err)
	}
	return n > 0, nil
}

// Cursor returns the last processed sequence number of stream as this
// transaction sees it (0 if none).
func (tx *Tx) Cursor(stream Stream) (uint64, error) {
	return scanCursor(tx.queryRow(qSelectCursor, []byte(stream.Group)))
}

// Cursor returns the last processed sequence number of stream (0 if none).
func (s *Store) Cursor(ctx context.Context, stream Stream) (uint64, error) {
	q, err := s.reader()
	if err != nil {
		return 0, err
	}
	return scanCursor(q.QueryRowContext(ctx, qSelectCursor, []byte(stream.Group)))
}

func scanCursor(r scanner) (uint64, error) {
	var seq int64
	if err := r.Scan(&seq); errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("failed to read cursor: %w", err)
	}
	return uint64(seq), nil
}
