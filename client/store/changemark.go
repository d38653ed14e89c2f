package store

import (
	"errors"
	"fmt"
)

// qChangedSince lists the rows changed after a change number.
const qChangedSince = `SELECT id, change_seq FROM messages WHERE change_seq > ? ORDER BY change_seq`

// RowChange is one message row's last change.
type RowChange struct {
	ID     MessageID
	Change ChangeSeq
}

// ChangeMark returns the number of the store's last change as this
// transaction sees it: the changes the transaction makes from now on are
// numbered above it, and [Tx.ChangedSince] lists them.
func (tx *Tx) ChangeMark() (ChangeSeq, error) {
	if err := tx.loadCounters(); err != nil {
		return 0, err
	}
	return tx.nextChange - 1, nil
}

// ChangedSince returns the rows whose last change is numbered after mark,
// as this transaction sees them, in change order. With a mark taken by
// [Tx.ChangeMark] it lists what the transaction changed since: history
// restore uses it to tell the archive uploader which changes it made.
func (tx *Tx) ChangedSince(mark ChangeSeq) ([]RowChange, error) {
	rows, err := tx.query(qChangedSince, int64(mark))
	if err != nil {
		return nil, fmt.Errorf("failed to list changes: %w", err)
	}
	var out []RowChange
	for rows.Next() {
		var raw []byte
		var c int64
		if err := rows.Scan(&raw, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("failed to list changes: %w", err)
		}
		var rc RowChange
		copy(rc.ID[:], raw)
		rc.Change = ChangeSeq(c)
		out = append(out, rc)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("failed to list changes: %w", err)
	}
	return out, nil
}
