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
	// mailbox counters and the seq of an earlier entry with the same
	// message id (0 if none), in one statement.
	qLockDeviceForMail = `SELECT d.revoked_at, d.mail_seq, d.mail_count,
		COALESCE((SELECT m.seq FROM mailbox m WHERE m.account_id = d.account_id AND m.device_id = d.device_id
			AND m.message_id = ?), 0)
		FROM devices d WHERE d.account_id = ? AND d.device_id = ? @FOR_UPDATE@`
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
	// Expiry deletes in chunks, each its own write, so that a large sweep
	// never holds up the writer for long.
	qExpireLog = `DELETE FROM group_log WHERE (group_id, seq) IN
		(SELECT group_id, seq FROM group_log WHERE created_at < ? LIMIT ?)`
	qExpireMailbox = `DELETE FROM mailbox WHERE (account_id, device_id, seq) IN
		(SELECT account_id, device_id, seq FROM mailbox WHERE created_at < ? LIMIT ?)`
	qRecountMailboxes = `UPDATE devices SET mail_count = (SELECT COUNT(*) FROM mailbox m
		WHERE m.account_id = devices.account_id AND m.device_id = devices.device_id) WHERE mail_count > 0`
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
		var revoked, mailSeq, count, dup int64
		err := tx.QueryRow(ctx, qLockDeviceForMail, m.ID[:], string(m.To.Account), m.To.Device[:]).
			Scan(&revoked, &mailSeq, &count, &dup)
		switch {
		case errors.Is(err, ErrNoRows):
			return fmt.Errorf("%w: device %s", store.ErrNotFound, m.To.Device)
		case err != nil:
			return wrap("read device", err)
		case revoked != 0:
			return fmt.Errorf("%w: device %s", store.ErrRevoked, m.To.Device)
		case dup != 0:
			seq = uint64(dup)
			return nil
		case count >= int64(s.opts.MailboxLimit):
			return store.ErrQueueFull
		}
		if err := insertMail(ctx, tx, m, mailSeq+1); err != nil {
			return err
		}
		seq = uint64(mailSeq + 1)
		return nil
	})
	return seq, err
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

// expireChunk is the most rows one expiry write deletes.
const expireChunk = 5000

// Expire implements store.Expiry.
func (s *Store) Expire(ctx context.Context, before time.Time) (store.ExpiryResult, error) {
	var res store.ExpiryResult
	cutoff := nanos(before)
	for _, c := range []struct {
		query string
		n     *int64
	}{{qExpireLog, &res.LogEntries}, {qExpireMailbox, &res.MailboxEntries}} {
		for {
			var n int64
			err := s.w.do(ctx, "", func(ctx context.Context, tx *batchTx) error {
				var err error
				n, err = tx.Exec(ctx, c.query, cutoff, expireChunk)
				return wrap("expire entries", err)
			})
			if err != nil {
				return res, err
			}
			*c.n += n
			if n < expireChunk {
				break
			}
		}
	}
	if res.MailboxEntries > 0 {
		err := s.w.do(ctx, "", func(ctx context.Context, tx *batchTx) error {
			_, err := tx.Exec(ctx, qRecountMailboxes)
			return wrap("recount mailboxes", err)
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
