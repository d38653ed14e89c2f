package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

const (
	qGroupExists  = `SELECT 1 FROM mls_groups WHERE group_id = ?`
	qInsertGroup  = `INSERT INTO mls_groups (group_id, epoch, last_seq, created_at) VALUES (?, 0, 0, ?)`
	qSelectGroup  = `SELECT epoch, last_seq, created_at FROM mls_groups WHERE group_id = ?`
	qInsertMember = `INSERT INTO group_members (group_id, account_id, device_id, joined_seq, acked_seq)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qDeleteMember  = `DELETE FROM group_members WHERE group_id = ? AND account_id = ? AND device_id = ?`
	qSelectMembers = `SELECT account_id, device_id, joined_seq, acked_seq FROM group_members
		WHERE group_id = ? ORDER BY account_id, device_id`
	qMemberExists = `SELECT 1 FROM group_members WHERE group_id = ? AND account_id = ? AND device_id = ?`
	qSelectMember = `SELECT joined_seq, acked_seq FROM group_members
		WHERE group_id = ? AND account_id = ? AND device_id = ?`
	qSelectMemberships = `SELECT m.group_id, m.acked_seq, g.last_seq FROM group_members m
		JOIN mls_groups g ON g.group_id = m.group_id
		WHERE m.account_id = ? AND m.device_id = ? ORDER BY m.group_id`
	// qLockGroupForAppend reads what an append needs in one statement: the
	// epoch and last seq (locking the group's row on PostgreSQL, which
	// serializes appends to one group), whether the sender is a member, and
	// the seq of an earlier entry with the same message id (0 if none).
	qLockGroupForAppend = `SELECT g.epoch, g.last_seq,
		(SELECT COUNT(*) FROM group_members m
			WHERE m.group_id = g.group_id AND m.account_id = ? AND m.device_id = ?),
		COALESCE((SELECT l.seq FROM group_log l WHERE l.group_id = g.group_id AND l.message_id = ?), 0)
		FROM mls_groups g WHERE g.group_id = ? @FOR_UPDATE@`
	// qAppendMessageCTE is AppendMessage in one statement, for dialects
	// with writable CTEs: it reads what qLockGroupForAppend reads and, only
	// if the message passes the same checks AppendMessage makes in Go,
	// advances the group and inserts the entry. Arguments: sender account,
	// sender device, message id, group, epoch, grace, kind, created, data.
	qAppendMessageCTE = `WITH g AS (
		SELECT g.epoch, g.last_seq,
			(SELECT COUNT(*) FROM group_members m
				WHERE m.group_id = g.group_id AND m.account_id = ?1 AND m.device_id = ?2) AS member,
			COALESCE((SELECT l.seq FROM group_log l WHERE l.group_id = g.group_id AND l.message_id = ?3), 0) AS dup
		FROM mls_groups g WHERE g.group_id = ?4 @FOR_UPDATE@
	), ok AS (
		SELECT last_seq + 1 AS seq FROM g
		WHERE dup = 0 AND member > 0 AND ?5 <= epoch AND epoch - ?5 <= ?6
	), upd AS (
		UPDATE mls_groups SET last_seq = ok.seq FROM ok WHERE mls_groups.group_id = ?4
	), ins AS (
		INSERT INTO group_log (group_id, seq, message_id, epoch, kind, sender_account, sender_device, created_at, data)
		SELECT ?4, ok.seq, ?3, ?5, CAST(?7 AS INTEGER), ?1, ?2, CAST(?8 AS BIGINT), CAST(?9 AS @BLOB@) FROM ok
	)
	SELECT epoch, last_seq, member, dup FROM g`
	qLogDup       = `SELECT seq FROM group_log WHERE group_id = ? AND message_id = ?`
	qAdvanceGroup = `UPDATE mls_groups SET epoch = ?, last_seq = ? WHERE group_id = ?`
	qInsertLog    = `INSERT INTO group_log
		(group_id, seq, message_id, epoch, kind, sender_account, sender_device, created_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// qInsertLogIfNew is qInsertLog that ignores a message id already in
	// the group's log.
	qInsertLogIfNew = `INSERT INTO group_log
		(group_id, seq, message_id, epoch, kind, sender_account, sender_device, created_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qReadLog = `SELECT seq, message_id, epoch, kind, sender_account, sender_device, created_at, data
		FROM group_log WHERE group_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	qSelectCursor = `SELECT m.acked_seq, g.last_seq FROM group_members m
		JOIN mls_groups g ON g.group_id = m.group_id
		WHERE m.group_id = ? AND m.account_id = ? AND m.device_id = ?`
	// qAdvanceCursor moves a cursor forward, never backwards nor past the
	// group's last entry; when it changes nothing, qSelectCursor tells why.
	qAdvanceCursor = `UPDATE group_members SET acked_seq = ?
		WHERE group_id = ? AND account_id = ? AND device_id = ? AND acked_seq < ?
		AND ? <= (SELECT g.last_seq FROM mls_groups g WHERE g.group_id = ?)`
)

// CreateGroup implements store.DeliveryService.
func (s *Store) CreateGroup(ctx context.Context, id store.GroupID, creator store.DeviceRef, at time.Time) error {
	if err := validGroup(id); err != nil {
		return err
	}
	if err := validRef(creator); err != nil {
		return err
	}
	return s.w.do(ctx, string(id), func(ctx context.Context, tx *batchTx) error {
		if _, _, err := activeDevice(ctx, tx, creator); err != nil {
			return err
		}
		ok, err := exists(ctx, tx, qGroupExists, []byte(id))
		if err != nil {
			return wrap("look up group", err)
		}
		if ok {
			return fmt.Errorf("%w: group", store.ErrExists)
		}
		if err := s.insert(ctx, tx, "group", qInsertGroup, []byte(id), nanos(at)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, qInsertMember, []byte(id), string(creator.Account), creator.Device[:], int64(0), int64(0))
		return wrap("add group creator", err)
	})
}

// Group implements store.DeliveryService.
func (s *Store) Group(ctx context.Context, id store.GroupID) (store.Group, error) {
	g := store.Group{ID: id}
	var epoch, last, created int64
	err := s.reader().QueryRow(ctx, qSelectGroup, []byte(id)).Scan(&epoch, &last, &created)
	if errors.Is(err, ErrNoRows) {
		return g, fmt.Errorf("%w: group", store.ErrNotFound)
	}
	if err != nil {
		return g, wrap("read group", err)
	}
	g.Epoch, g.LastSeq, g.CreatedAt = uint64(epoch), uint64(last), fromNanos(created)
	return g, nil
}

// Members implements store.DeliveryService.
func (s *Store) Members(ctx context.Context, id store.GroupID) ([]store.Member, error) {
	r := s.reader()
	rows, err := r.Query(ctx, qSelectMembers, []byte(id))
	if err != nil {
		return nil, wrap("list members", err)
	}
	var out []store.Member
	for rows.Next() {
		var account string
		var dev []byte
		var joined, acked int64
		if err := rows.Scan(&account, &dev, &joined, &acked); err != nil {
			rows.Close()
			return nil, wrap("list members", err)
		}
		d, err := devID(dev)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, store.Member{
			Device:    store.DeviceRef{Account: identity.AccountID(account), Device: d},
			JoinedSeq: uint64(joined), AckedSeq: uint64(acked),
		})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("list members", err)
	}
	if len(out) == 0 {
		if err := groupMustExist(ctx, r, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// groupMustExist returns ErrNotFound unless the group exists.
func groupMustExist(ctx context.Context, q Querier, id store.GroupID) error {
	ok, err := exists(ctx, q, qGroupExists, []byte(id))
	if err != nil {
		return wrap("look up group", err)
	}
	if !ok {
		return fmt.Errorf("%w: group", store.ErrNotFound)
	}
	return nil
}

// Member implements store.DeliveryService.
func (s *Store) Member(ctx context.Context, id store.GroupID, dev store.DeviceRef) (store.Member, error) {
	r := s.reader()
	m := store.Member{Device: dev}
	var joined, acked int64
	err := r.QueryRow(ctx, qSelectMember, []byte(id), string(dev.Account), dev.Device[:]).Scan(&joined, &acked)
	if errors.Is(err, ErrNoRows) {
		if err := groupMustExist(ctx, r, id); err != nil {
			return m, err
		}
		return m, store.ErrNotMember
	}
	if err != nil {
		return m, wrap("read member", err)
	}
	m.JoinedSeq, m.AckedSeq = uint64(joined), uint64(acked)
	return m, nil
}

// Memberships implements store.DeliveryService.
func (s *Store) Memberships(ctx context.Context, dev store.DeviceRef) ([]store.Membership, error) {
	rows, err := s.reader().Query(ctx, qSelectMemberships, string(dev.Account), dev.Device[:])
	if err != nil {
		return nil, wrap("list memberships", err)
	}
	defer rows.Close()
	var out []store.Membership
	for rows.Next() {
		var g []byte
		var acked, last int64
		if err := rows.Scan(&g, &acked, &last); err != nil {
			return nil, wrap("list memberships", err)
		}
		out = append(out, store.Membership{Group: store.GroupID(g), AckedSeq: uint64(acked), LastSeq: uint64(last)})
	}
	return out, wrap("list memberships", rows.Err())
}

// groupState is what qLockGroupForAppend returns.
type groupState struct {
	epoch, lastSeq uint64
	member         bool
	dupSeq         uint64
}

// lockGroupForAppend reads the state an append checks.
func lockGroupForAppend(ctx context.Context, tx Querier, id store.GroupID, sender store.DeviceRef, msg store.MessageID) (groupState, error) {
	var epoch, last, member, dup int64
	err := tx.QueryRow(ctx, qLockGroupForAppend, string(sender.Account), sender.Device[:], msg[:], []byte(id)).
		Scan(&epoch, &last, &member, &dup)
	if errors.Is(err, ErrNoRows) {
		return groupState{}, fmt.Errorf("%w: group", store.ErrNotFound)
	}
	if err != nil {
		return groupState{}, wrap("read group", err)
	}
	return groupState{epoch: uint64(epoch), lastSeq: uint64(last), member: member > 0, dupSeq: uint64(dup)}, nil
}

// appendLog writes one log entry and advances the group's counters.
func appendLog(ctx context.Context, tx Querier, e *store.LogEntry, newEpoch uint64) error {
	if _, err := tx.Exec(ctx, qAdvanceGroup, i64(newEpoch), i64(e.Seq), []byte(e.Group)); err != nil {
		return fmt.Errorf("failed to advance group: %w", err)
	}
	return insertLog(ctx, tx, e)
}

// insertLog writes one log entry.
func insertLog(ctx context.Context, tx Querier, e *store.LogEntry) error {
	if _, err := tx.Exec(ctx, qInsertLog, []byte(e.Group), i64(e.Seq), e.ID[:], i64(e.Epoch), int64(e.Kind),
		string(e.Sender.Account), e.Sender.Device[:], nanos(e.CreatedAt), e.Data); err != nil {
		return fmt.Errorf("failed to append to group log: %w", err)
	}
	return nil
}

// AppendMessage implements store.DeliveryService.
func (s *Store) AppendMessage(ctx context.Context, m store.Message) (uint64, error) {
	if err := validMessage(m); err != nil {
		return 0, err
	}
	a := s.newAppend(m)
	var err error
	if a.st == nil {
		err = s.w.doDeferred(ctx, string(m.Group), a.fn, a.visible)
	} else {
		err = s.w.doStatement(ctx, string(m.Group), a.st)
		if err == nil && m.Visible != nil {
			m.Visible(a.seq) // committed synchronously: visible when durable
		}
	}
	return a.seq, err
}

// AppendMessageAsync implements store.AsyncAppender: the append goes to
// the group-commit writer and done is called by it, so no goroutine waits
// for the write.
func (s *Store) AppendMessageAsync(m store.Message, done func(seq uint64, err error)) {
	if err := validMessage(m); err != nil {
		done(0, err)
		return
	}
	a := s.newAppend(m)
	if a.st == nil {
		s.w.doAsync(string(m.Group), a.fn, true, nil, a.visible, func(err error) { done(a.seq, err) })
		return
	}
	s.w.doAsync(string(m.Group), a.fn, false, a.st, nil, func(err error) {
		if err == nil && m.Visible != nil {
			m.Visible(a.seq) // committed synchronously: visible when durable
		}
		done(a.seq, err)
	})
}

// validMessage checks what AppendMessage checks before it writes.
func validMessage(m store.Message) error {
	if err := validGroup(m.Group); err != nil {
		return err
	}
	if err := validRef(m.Sender); err != nil {
		return err
	}
	if m.Kind != store.KindApplication && m.Kind != store.KindProposal {
		return fmt.Errorf("%w: message kind %d", store.ErrInvalid, m.Kind)
	}
	if m.At.IsZero() {
		return fmt.Errorf("%w: message time is zero", store.ErrInvalid)
	}
	return nil
}

// appendOp is one group-log append on its way through the writer: with
// the group cache, fn queues the entry (and visible reports it); without,
// st appends it in one statement. seq receives the result.
type appendOp struct {
	seq     uint64
	fn      op
	visible func()
	st      *Statement
}

func (s *Store) newAppend(m store.Message) *appendOp {
	a := &appendOp{}
	if s.cache != nil {
		a.fn = func(ctx context.Context, tx *batchTx) error {
			return s.appendMessageCached(ctx, tx, m, &a.seq)
		}
		if m.Visible != nil {
			a.visible = func() { m.Visible(a.seq) }
		}
		return a
	}
	a.st = &Statement{
		Query: qAppendMessageCTE,
		Args: []any{string(m.Sender.Account), m.Sender.Device[:], m.ID[:], []byte(m.Group),
			i64(m.Epoch), i64(m.EpochGrace), int64(m.Kind), nanos(m.At), m.Data},
		Result: func(row Row) (error, error) {
			var epoch, last, member, dup int64
			err := row.Scan(&epoch, &last, &member, &dup)
			if errors.Is(err, ErrNoRows) {
				return fmt.Errorf("%w: group", store.ErrNotFound), nil
			}
			if err != nil {
				return nil, wrap("append to group log", err)
			}
			g := groupState{epoch: uint64(epoch), lastSeq: uint64(last), member: member > 0, dupSeq: uint64(dup)}
			if err := checkMessage(m, g); err != nil {
				return err, nil
			}
			a.seq = g.lastSeq + 1 // the statement has appended it
			if g.dupSeq != 0 {
				a.seq = g.dupSeq
			}
			return nil, nil
		},
	}
	a.fn = statementOp(a.st)
	return a
}

// checkMessage applies AppendMessage's rules to the group's state. A
// duplicate passes (the caller returns its seq).
func checkMessage(m store.Message, g groupState) error {
	switch {
	case g.dupSeq != 0:
		return nil
	case !g.member:
		return store.ErrNotMember
	case m.Epoch > g.epoch:
		return &store.EpochError{Current: g.epoch}
	case g.epoch-m.Epoch > m.EpochGrace:
		return &store.EpochError{Current: g.epoch, Stale: true}
	}
	return nil
}

// appendMessageCached appends with the single writer's group cache: it
// checks the message against the cached group and queues the entry, which
// is written with the other appends of the batch (pending.go) and gets its
// seq (or, for a resend, its stored copy's) in *seq then.
func (s *Store) appendMessageCached(ctx context.Context, tx *batchTx, m store.Message, seq *uint64) error {
	g, err := s.cache.group(ctx, tx, m.Group)
	if err != nil {
		return err
	}
	st := groupState{epoch: g.epoch, lastSeq: g.lastSeq}
	if st.member, err = s.cache.isMember(ctx, tx, m.Group, g, m.Sender); err != nil {
		return err
	}
	if err := checkMessage(m, st); err != nil {
		// A resend of a stored message still gets its seq.
		dup, found, derr := logDup(ctx, tx, m.Group, m.ID)
		if derr != nil {
			return derr
		}
		if found {
			*seq = dup
			return nil
		}
		return err
	}
	s.cache.queue(m.Group, g, store.LogEntry{Group: m.Group, ID: m.ID, Epoch: m.Epoch, Kind: m.Kind,
		Sender: m.Sender, Data: m.Data, CreatedAt: m.At}, seq)
	return nil
}

// logDup looks up an earlier entry with the message id in the group's log.
func logDup(ctx context.Context, tx Querier, group store.GroupID, id store.MessageID) (uint64, bool, error) {
	var dup int64
	err := tx.QueryRow(ctx, qLogDup, []byte(group), id[:]).Scan(&dup)
	switch {
	case err == nil:
		return uint64(dup), true, nil
	case errors.Is(err, ErrNoRows):
		return 0, false, nil
	}
	return 0, false, wrap("look up message id", err)
}

// AppendCommit implements store.DeliveryService.
func (s *Store) AppendCommit(ctx context.Context, c store.Commit) (uint64, error) {
	if err := validGroup(c.Group); err != nil {
		return 0, err
	}
	if err := validRef(c.Sender); err != nil {
		return 0, err
	}
	for _, d := range append(append([]store.DeviceRef(nil), c.Added...), c.Removed...) {
		if err := validRef(d); err != nil {
			return 0, err
		}
	}
	if c.At.IsZero() {
		return 0, fmt.Errorf("%w: commit time is zero", store.ErrInvalid)
	}
	for _, w := range c.Welcomes {
		if err := validRef(w.To); err != nil {
			return 0, err
		}
	}
	var seq uint64
	err := s.w.doSync(ctx, string(c.Group), func(ctx context.Context, tx *batchTx) error {
		if s.cache != nil {
			if err := s.cache.flushGroup(ctx, tx.WriteTx, c.Group); err != nil {
				return err
			}
		}
		g, err := lockGroupForAppend(ctx, tx, c.Group, c.Sender, c.ID)
		if err != nil {
			return err
		}
		if g.dupSeq != 0 {
			seq = g.dupSeq
			return nil
		}
		if !g.member {
			return store.ErrNotMember
		}
		if c.Epoch != g.epoch {
			return &store.EpochError{Current: g.epoch}
		}
		// Check (and lock) every device the commit adds or welcomes before
		// the first write, so that a refusal leaves the batch clean.
		mail := map[store.DeviceRef]int64{}
		for _, d := range c.Added {
			if _, _, err := activeDevice(ctx, tx, d); err != nil {
				return err
			}
		}
		for _, w := range c.Welcomes {
			if _, ok := mail[w.To]; ok {
				continue
			}
			mailSeq, _, err := activeDevice(ctx, tx, w.To)
			if err != nil {
				return err
			}
			mail[w.To] = mailSeq
		}
		e := store.LogEntry{Group: c.Group, Seq: g.lastSeq + 1, ID: c.ID, Epoch: c.Epoch, Kind: store.KindCommit,
			Sender: c.Sender, Data: c.Data, CreatedAt: c.At}
		if err := appendLog(ctx, tx, &e, g.epoch+1); err != nil {
			return err
		}
		for _, d := range c.Removed {
			if _, err := tx.Exec(ctx, qDeleteMember, []byte(c.Group), string(d.Account), d.Device[:]); err != nil {
				return fmt.Errorf("failed to remove member: %w", err)
			}
		}
		for _, d := range c.Added {
			if _, err := tx.Exec(ctx, qInsertMember, []byte(c.Group), string(d.Account), d.Device[:],
				i64(e.Seq), i64(e.Seq)); err != nil {
				return fmt.Errorf("failed to add member: %w", err)
			}
		}
		for _, w := range c.Welcomes {
			mail[w.To]++
			w.Kind = store.MailWelcome
			if w.At.IsZero() {
				w.At = c.At
			}
			if err := insertMail(ctx, tx, w, mail[w.To]); err != nil {
				return err
			}
		}
		if s.cache != nil {
			s.cache.drop(c.Group)
		}
		seq = e.Seq
		return nil
	})
	return seq, err
}

// ReadGroup implements store.GroupLog.
func (s *Store) ReadGroup(ctx context.Context, id store.GroupID, after uint64, limit int) ([]store.LogEntry, error) {
	r := s.reader()
	rows, err := r.Query(ctx, qReadLog, []byte(id), i64(after), clampLimit(limit))
	if err != nil {
		return nil, wrap("read group log", err)
	}
	var out []store.LogEntry
	for rows.Next() {
		e := store.LogEntry{Group: id}
		var seq, epoch, kind, created int64
		var mid, sdev []byte
		var sacct string
		if err := rows.Scan(&seq, &mid, &epoch, &kind, &sacct, &sdev, &created, &e.Data); err != nil {
			rows.Close()
			return nil, wrap("read group log", err)
		}
		if e.ID, err = msgID(mid); err == nil {
			e.Sender.Device, err = devID(sdev)
		}
		if err != nil {
			rows.Close()
			return nil, err
		}
		e.Seq, e.Epoch, e.Kind, e.CreatedAt = uint64(seq), uint64(epoch), store.MessageKind(kind), fromNanos(created)
		e.Sender.Account = identity.AccountID(sacct)
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("read group log", err)
	}
	if len(out) == 0 {
		if err := groupMustExist(ctx, r, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AckGroup implements store.GroupLog. The common case, a cursor moving
// forward, is one statement.
func (s *Store) AckGroup(ctx context.Context, dev store.DeviceRef, id store.GroupID, seq uint64) error {
	return s.w.do(ctx, string(id), func(ctx context.Context, tx *batchTx) error {
		// With the group cache, the group row may lag behind appends made
		// earlier in this transaction; those are not committed, so no
		// client can know their seqs, and acking them is refused as past
		// the end either way.
		n, err := tx.Exec(ctx, qAdvanceCursor, i64(seq), []byte(id), string(dev.Account), dev.Device[:], i64(seq),
			i64(seq), []byte(id))
		if err != nil {
			return fmt.Errorf("failed to advance cursor: %w", err)
		}
		if n > 0 {
			return nil
		}
		var acked, last int64
		err = tx.QueryRow(ctx, qSelectCursor, []byte(id), string(dev.Account), dev.Device[:]).Scan(&acked, &last)
		if errors.Is(err, ErrNoRows) {
			if err := groupMustExist(ctx, tx, id); err != nil {
				return err
			}
			return store.ErrNotMember
		}
		if err != nil {
			return wrap("read cursor", err)
		}
		if seq > uint64(last) {
			return fmt.Errorf("%w: ack of seq %d past the group's last entry %d", store.ErrInvalid, seq, last)
		}
		return nil // already acknowledged: a cursor never moves backwards
	})
}
