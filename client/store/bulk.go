package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// InsertOutcome says what [Tx.InsertMessages] did with one message.
type InsertOutcome uint8

// Outcomes of [Tx.InsertMessages].
const (
	// Inserted: the message is new and now stored.
	Inserted InsertOutcome = iota + 1
	// Existed: a message with its id was already stored (what
	// [Tx.InsertMessage] does then, it did: a pending message of ours
	// adopts the sequence number).
	Existed
	// Refused: the message is invalid ([ErrInvalid]; a stored message
	// holding its sequence number is displaced instead, see
	// [Tx.Displaced]); nothing was stored.
	Refused
)

// bulkRows is the most rows one multi-row INSERT writes.
const bulkRows = 64

// bulkLookup is the most ids one existence query names.
const bulkLookup = 500

// insertColumns is the number of values one message row binds.
const insertColumns = 13

// InsertMessages stores many messages at once, with the effect of calling
// [Tx.InsertMessage] on each in order, and returns each one's outcome. It
// is the bulk path of history restore: messages with a sequence number that
// the store does not hold yet, and that are not edits or deletions to apply
// (tombstones are fine), are written by multi-row INSERTs of up to 64 rows,
// their waiting events looked up for the whole run in one query; every
// other message, and any run the database refuses (a sequence number or id
// conflict), goes through InsertMessage one by one. The resulting messages
// are the same; only the order of change numbers may differ (a run's
// waiting events are applied after the run). Errors other than an
// invalid message or a taken sequence number end the call (the transaction
// should then be abandoned).
func (tx *Tx) InsertMessages(ms []*Message) ([]InsertOutcome, error) {
	out := make([]InsertOutcome, len(ms))
	if err := tx.loadCounters(); err != nil {
		return nil, err
	}
	b := &bulkInsert{tx: tx, stmts: map[string]*sql.Stmt{}}
	defer b.close()
	exist, err := b.existingIDs(ms)
	if err != nil {
		return nil, err
	}
	var run []int
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := b.insertRun(ms, run, out)
		run = run[:0]
		return err
	}
	for i, m := range ms {
		if m != nil && m.Seq > 0 && !exist[m.ID] && (m.Deleted || (m.Kind != KindEdit && m.Kind != KindDelete)) && m.validate() == nil {
			exist[m.ID] = true // a second copy in ms takes the slow path
			run = append(run, i)
			if len(run) == bulkRows {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		if out[i], err = tx.insertOne(m); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// insertOne is InsertMessage with its outcome.
func (tx *Tx) insertOne(m *Message) (InsertOutcome, error) {
	ok, err := tx.InsertMessage(m)
	switch {
	case errors.Is(err, ErrSeqTaken), errors.Is(err, ErrInvalid):
		return Refused, nil
	case err != nil:
		return 0, err
	case ok:
		return Inserted, nil
	}
	return Existed, nil
}

// existingIDs returns which of the messages' ids the store holds.
func (b *bulkInsert) existingIDs(ms []*Message) (map[MessageID]bool, error) {
	exist := make(map[MessageID]bool)
	for start := 0; start < len(ms); start += bulkLookup {
		part := ms[start:min(start+bulkLookup, len(ms))]
		args := make([]any, 0, len(part))
		for _, m := range part {
			if m != nil {
				args = append(args, m.ID[:])
			}
		}
		if len(args) == 0 {
			continue
		}
		st, err := b.prepare(`SELECT id FROM messages WHERE id IN (` + placeholders(len(args)) + `)`)
		if err != nil {
			return nil, err
		}
		rows, err := st.QueryContext(b.tx.ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("failed to look up messages: %w", err)
		}
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("failed to look up messages: %w", err)
			}
			var id MessageID
			copy(id[:], raw)
			exist[id] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("failed to look up messages: %w", err)
		}
	}
	return exist, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// bulkInsert holds the statements one InsertMessages call prepared (their
// text depends on the row count), by text.
type bulkInsert struct {
	tx    *Tx
	stmts map[string]*sql.Stmt
}

func (b *bulkInsert) close() {
	for _, st := range b.stmts {
		_ = st.Close()
	}
}

func (b *bulkInsert) prepare(q string) (*sql.Stmt, error) {
	if st, ok := b.stmts[q]; ok {
		return st, nil
	}
	st, err := b.tx.tx.PrepareContext(b.tx.ctx, q)
	if err != nil {
		return nil, fmt.Errorf("failed to prepare bulk statement: %w", err)
	}
	b.stmts[q] = st
	return st, nil
}

func (b *bulkInsert) insertStmt(rows int) (*sql.Stmt, error) {
	row := "(" + placeholders(insertColumns) + ")"
	return b.prepare(`INSERT INTO messages (id, chat, pos, kind, mine, target, content, sent_at, received_at, state, expires_at, deleted_at, change_seq) VALUES ` +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", "))
}

// insertRun writes the messages ms[run[...]] (new, with sequence numbers,
// valid, not events to apply) with one INSERT; if the database refuses it,
// nothing of it is stored and each goes through InsertMessage instead.
func (b *bulkInsert) insertRun(ms []*Message, run []int, out []InsertOutcome) error {
	tx := b.tx
	args := make([]any, 0, len(run)*insertColumns)
	for k, i := range run {
		m := ms[i]
		var content any
		var deletedAt int64
		if m.Deleted {
			deletedAt = max(unixNano(m.DeletedAt), 1)
		} else {
			c := messageContent{sender: m.Sender, device: m.SenderDevice, body: m.Body}
			raw, err := c.marshal()
			if err != nil {
				return b.slow(ms, run, out)
			}
			if content, err = tx.s.seal.seal(contentRef(m.ID, m.Chat, m.Kind, m.Mine, m.Target), raw); err != nil {
				return err
			}
		}
		var target any
		if !m.Target.IsZero() {
			target = m.Target[:]
		}
		args = append(args, m.ID[:], string(m.Chat), int64(m.Seq), int64(m.Kind), m.Mine, target, content,
			unixNano(m.SentAt), unixNano(m.ReceivedAt), int64(m.State), unixNano(m.ExpiresAt), deletedAt, int64(tx.nextChange)+int64(k))
	}
	st, err := b.insertStmt(len(run))
	if err != nil {
		return err
	}
	if _, err := st.ExecContext(tx.ctx, args...); err != nil {
		// A constraint aborts the statement alone: nothing of it stays.
		return b.slow(ms, run, out)
	}
	var live []any
	byID := make(map[MessageID]*Message, len(run))
	for _, i := range run {
		m := ms[i]
		m.Change = tx.nextChange
		m.Position = Position(m.Seq)
		tx.nextChange++
		out[i] = Inserted
		if !m.Deleted {
			live = append(live, m.ID[:])
			byID[m.ID] = m
		}
	}
	if len(live) == 0 {
		return nil
	}
	// Events stored before their targets wait for them; almost always
	// there are none.
	wq, err := b.prepare(`SELECT DISTINCT target FROM messages INDEXED BY messages_target WHERE target IN (` +
		placeholders(len(live)) + `) AND kind IN (3, 4) AND deleted_at = 0`)
	if err != nil {
		return err
	}
	rows, err := wq.QueryContext(tx.ctx, live...)
	if err != nil {
		return fmt.Errorf("failed to look up waiting edits: %w", err)
	}
	var waiting []*Message
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return fmt.Errorf("failed to look up waiting edits: %w", err)
		}
		var id MessageID
		copy(id[:], raw)
		if m, ok := byID[id]; ok {
			waiting = append(waiting, m)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("failed to look up waiting edits: %w", err)
	}
	for _, m := range waiting {
		if m.Kind == KindReaction || m.Kind == KindReceipt {
			continue
		}
		if err := tx.applyWaitingEvents(m); err != nil {
			return err
		}
	}
	return nil
}

// slow stores the run's messages one by one.
func (b *bulkInsert) slow(ms []*Message, run []int, out []InsertOutcome) error {
	for _, i := range run {
		o, err := b.tx.insertOne(ms[i])
		if err != nil {
			return err
		}
		out[i] = o
	}
	return nil
}
