package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/server/store"
)

const (
	// qLockDeviceForMail reads (and on PostgreSQL locks) the device's
	// mailbox counters. An earlier entry with the same message id is
	// looked up (qMailDup) only when the insert ignores the new one or the
	// mailbox is full.
	qLockDeviceForMail = `SELECT revoked_at, mail_seq, mail_count
		FROM devices WHERE account_id = ? AND device_id = ? @FOR_UPDATE@`
	qMailDup = `SELECT seq FROM mailbox WHERE account_id = ? AND device_id = ? AND message_id = ?`
	// qInsertMail ignores a duplicate message id, which only a Welcome
	// repeated inside one commit can produce.
	qInsertMail = `INSERT INTO mailbox (account_id, device_id, seq, message_id, kind, created_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qBumpMailbox = `UPDATE devices SET mail_seq = ?, mail_count = mail_count + ?
		WHERE account_id = ? AND device_id = ?`
	qReadMailbox = `SELECT seq, message_id, kind, created_at, data FROM mailbox
		WHERE account_id = ? AND device_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	qDeleteMail      = `DELETE FROM mailbox WHERE account_id = ? AND device_id = ? AND seq = ?`
	qDecMailboxCount = `UPDATE devices SET mail_count = mail_count - ? WHERE account_id = ? AND device_id = ?`
	qSelectMailCount = `SELECT mail_count FROM devices WHERE account_id = ? AND device_id = ?`
	// Expiry walks each group log and each non-empty mailbox from its
	// front in primary-key order and deletes the entries before the first
	// one created at or after the cutoff (?2), at most ?3 rows at a time.
	// The cutoff's entry is found by the same key order, so no index on
	// created_at is needed.
	qExpireGroupsPage = `SELECT group_id FROM mls_groups WHERE group_id > ? ORDER BY group_id LIMIT ?`
	qExpireLog        = `DELETE FROM group_log WHERE group_id = ?1 AND seq IN (
		SELECT seq FROM group_log WHERE group_id = ?1 AND seq < COALESCE(
			(SELECT f.seq FROM group_log f WHERE f.group_id = ?1 AND f.created_at >= ?2 ORDER BY f.seq LIMIT 1),
			?4)
		ORDER BY seq LIMIT ?3)`
	qExpireDevicesPage = `SELECT account_id, device_id FROM devices
		WHERE mail_count > 0 AND (account_id > ? OR (account_id = ? AND device_id > ?))
		ORDER BY account_id, device_id LIMIT ?`
	qExpireMailbox = `DELETE FROM mailbox WHERE account_id = ?1 AND device_id = ?2 AND seq IN (
		SELECT seq FROM mailbox WHERE account_id = ?1 AND device_id = ?2 AND seq < COALESCE(
			(SELECT f.seq FROM mailbox f WHERE f.account_id = ?1 AND f.device_id = ?2 AND f.created_at >= ?3
				ORDER BY f.seq LIMIT 1),
			?5)
		ORDER BY seq LIMIT ?4)`
)

// insertMail stores one mailbox entry with the given seq and records the
// device's new counters. The device row must have been read (and locked).
func insertMail(ctx context.Context, tx Querier, m store.MailboxMessage, seq int64) error {
	n, err := tx.Exec(ctx, qInsertMail, string(m.To.Account), m.To.Device[:], seq, m.ID[:], int64(m.Kind), nanos(m.At), m.Data)
	if err != nil {
		return fmt.Errorf("failed to queue message: %w", err)
	}
	if _, err := tx.Exec(ctx, qBumpMailbox, seq, n, string(m.To.Account), m.To.Device[:]); err != nil {
		return fmt.Errorf("failed to update mailbox counters: %w", err)
	}
	return nil
}

// Deliver implements store.Mailbox.
func (s *Store) Deliver(ctx context.Context, m store.MailboxMessage) (uint64, error) {
	if err := validRef(m.To); err != nil {
		return 0, err
	}
	if !m.Kind.Valid() {
		return 0, fmt.Errorf("%w: mailbox kind %d", store.ErrInvalid, m.Kind)
	}
	if m.At.IsZero() {
		return 0, fmt.Errorf("%w: message time is zero", store.ErrInvalid)
	}
	var seq uint64
	err := s.w.do(ctx, deviceKey(m.To), func(ctx context.Context, tx *batchTx) error {
		var revoked, mailSeq, count int64
		err := tx.QueryRow(ctx, qLockDeviceForMail, string(m.To.Account), m.To.Device[:]).
			Scan(&revoked, &mailSeq, &count)
		switch {
		case errors.Is(err, ErrNoRows):
			return fmt.Errorf("%w: device %s", store.ErrNotFound, m.To.Device)
		case err != nil:
			return wrap("read device", err)
		case revoked != 0:
			return fmt.Errorf("%w: device %s", store.ErrRevoked, m.To.Device)
		case count >= int64(s.opts.MailboxLimit):
			// A resend of a stored message is still answered.
			dup, found, err := mailDup(ctx, tx, m)
			if err != nil || found {
				seq = dup
				return err
			}
			return store.ErrQueueFull
		}
		n, err := tx.Exec(ctx, qInsertMail, string(m.To.Account), m.To.Device[:], mailSeq+1, m.ID[:],
			int64(m.Kind), nanos(m.At), m.Data)
		if err != nil {
			return fmt.Errorf("failed to queue message: %w", err)
		}
		if n == 0 { // a resend: answer with the stored copy's seq
			dup, found, err := mailDup(ctx, tx, m)
			if err == nil && !found {
				err = fmt.Errorf("failed to queue message: seq %d already used", mailSeq+1)
			}
			seq = dup
			return err
		}
		if _, err := tx.Exec(ctx, qBumpMailbox, mailSeq+1, n, string(m.To.Account), m.To.Device[:]); err != nil {
			return fmt.Errorf("failed to update mailbox counters: %w", err)
		}
		seq = uint64(mailSeq + 1)
		return nil
	})
	return seq, err
}

// mailDup looks up an earlier entry with the message's id in its mailbox.
func mailDup(ctx context.Context, tx Querier, m store.MailboxMessage) (uint64, bool, error) {
	var dup int64
	err := tx.QueryRow(ctx, qMailDup, string(m.To.Account), m.To.Device[:], m.ID[:]).Scan(&dup)
	switch {
	case err == nil:
		return uint64(dup), true, nil
	case errors.Is(err, ErrNoRows):
		return 0, false, nil
	}
	return 0, false, wrap("look up message id", err)
}

// ReadMailbox implements store.Mailbox.
func (s *Store) ReadMailbox(ctx context.Context, dev store.DeviceRef, after uint64, limit int) ([]store.MailboxEntry, error) {
	rows, err := s.reader().Query(ctx, qReadMailbox, string(dev.Account), dev.Device[:], i64(after), clampLimit(limit))
	if err != nil {
		return nil, wrap("read mailbox", err)
	}
	defer rows.Close()
	var out []store.MailboxEntry
	for rows.Next() {
		e := store.MailboxEntry{To: dev}
		var seq, kind, created int64
		var mid []byte
		if err := rows.Scan(&seq, &mid, &kind, &created, &e.Data); err != nil {
			return nil, wrap("read mailbox", err)
		}
		if e.ID, err = msgID(mid); err != nil {
			return nil, err
		}
		e.Seq, e.Kind, e.CreatedAt = uint64(seq), store.MailKind(kind), fromNanos(created)
		out = append(out, e)
	}
	return out, wrap("read mailbox", rows.Err())
}

// AckMailbox implements store.Mailbox.
func (s *Store) AckMailbox(ctx context.Context, dev store.DeviceRef, seqs []uint64) error {
	if len(seqs) > store.MaxReadLimit {
		return fmt.Errorf("%w: ack at most %d entries at once", store.ErrInvalid, store.MaxReadLimit)
	}
	if len(seqs) == 0 {
		return nil
	}
	return s.w.do(ctx, deviceKey(dev), func(ctx context.Context, tx *batchTx) error {
		var deleted int64
		for _, seq := range seqs {
			n, err := tx.Exec(ctx, qDeleteMail, string(dev.Account), dev.Device[:], i64(seq))
			if err != nil {
				return fmt.Errorf("failed to ack mailbox entry: %w", err)
			}
			deleted += n
		}
		if deleted == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, qDecMailboxCount, deleted, string(dev.Account), dev.Device[:])
		return wrap("update mailbox count", err)
	})
}

// MailboxDepth implements store.Mailbox.
func (s *Store) MailboxDepth(ctx context.Context, dev store.DeviceRef) (int, error) {
	var n int64
	err := s.reader().QueryRow(ctx, qSelectMailCount, string(dev.Account), dev.Device[:]).Scan(&n)
	if errors.Is(err, ErrNoRows) {
		return 0, fmt.Errorf("%w: device %s", store.ErrNotFound, dev.Device)
	}
	return int(n), wrap("read mailbox depth", err)
}

// expireChunk is the most rows one expiry write deletes, and expirePage the
// most logs or mailboxes it visits, so that a sweep never holds up the
// writer for long.
const (
	expireChunk = 5000
	expirePage  = 256
)

// maxSeq bounds "every seq" in the expiry statements.
const maxSeq = int64(1<<63 - 1)

// Expire implements store.Expiry. Each log and mailbox is cut at its first
// entry created at or after before: entries in front of it are deleted,
// entries behind it are kept even if older (appends to one log are stamped
// in nearly increasing order, so this only delays their expiry until the
// next sweep that reaches them).
func (s *Store) Expire(ctx context.Context, before time.Time) (store.ExpiryResult, error) {
	var res store.ExpiryResult
	cutoff := nanos(before)
	var err error
	if res.LogEntries, err = s.expireLogs(ctx, cutoff); err != nil {
		return res, err
	}
	res.MailboxEntries, err = s.expireMailboxes(ctx, cutoff)
	return res, err
}

// expireLogs sweeps every group log, a page of groups (or expireChunk rows)
// per write.
func (s *Store) expireLogs(ctx context.Context, cutoff int64) (int64, error) {
	var total int64
	after := []byte{} // group ids are never empty
	for {
		var done bool
		var deleted int64 // set by the op, which may run twice (batch, then alone)
		err := s.w.do(ctx, "", func(ctx context.Context, tx *batchTx) error {
			deleted = 0
			ids, err := expireGroupsPage(ctx, tx, after)
			if err != nil {
				return err
			}
			budget := int64(expireChunk)
			next := after
			for _, id := range ids {
				n, err := tx.Exec(ctx, qExpireLog, id, cutoff, budget, maxSeq)
				if err != nil {
					return wrap("expire group log", err)
				}
				deleted, budget = deleted+n, budget-n
				if budget == 0 {
					break // this group may have more: visit it again
				}
				next = id
			}
			after, done = next, len(ids) < expirePage && budget > 0
			return nil
		})
		if err != nil {
			return total, err
		}
		total += deleted
		if done {
			return total, nil
		}
	}
}

// expireGroupsPage reads the next page of group ids after the given one.
func expireGroupsPage(ctx context.Context, tx Querier, after []byte) ([][]byte, error) {
	rows, err := tx.Query(ctx, qExpireGroupsPage, after, expirePage)
	if err != nil {
		return nil, wrap("list groups", err)
	}
	defer rows.Close()
	var ids [][]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("list groups", err)
		}
		ids = append(ids, id)
	}
	return ids, wrap("list groups", rows.Err())
}

// expireMailboxes sweeps every non-empty mailbox, a page of devices (or
// expireChunk rows) per write, and keeps each device's count in step.
func (s *Store) expireMailboxes(ctx context.Context, cutoff int64) (int64, error) {
	var total int64
	type dev struct {
		account string
		device  []byte
	}
	after := dev{device: []byte{}}
	for {
		var done bool
		var deleted int64 // set by the op, which may run twice (batch, then alone)
		err := s.w.do(ctx, "", func(ctx context.Context, tx *batchTx) error {
			deleted = 0
			rows, err := tx.Query(ctx, qExpireDevicesPage, after.account, after.account, after.device, expirePage)
			if err != nil {
				return wrap("list mailboxes", err)
			}
			var devs []dev
			for rows.Next() {
				var d dev
				if err := rows.Scan(&d.account, &d.device); err != nil {
					rows.Close()
					return wrap("list mailboxes", err)
				}
				devs = append(devs, d)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return wrap("list mailboxes", err)
			}
			budget := int64(expireChunk)
			next := after
			for _, d := range devs {
				n, err := tx.Exec(ctx, qExpireMailbox, d.account, d.device, cutoff, budget, maxSeq)
				if err != nil {
					return wrap("expire mailbox", err)
				}
				if n > 0 {
					if _, err := tx.Exec(ctx, qDecMailboxCount, n, d.account, d.device); err != nil {
						return wrap("update mailbox count", err)
					}
				}
				deleted, budget = deleted+n, budget-n
				if budget == 0 {
					break // this mailbox may have more: visit it again
				}
				next = d
			}
			after, done = next, len(devs) < expirePage && budget > 0
			return nil
		})
		if err != nil {
			return total, err
		}
		total += deleted
		if done {
			return total, nil
		}
	}
}
