package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-im/parley/server/store"
)

// Deferred group-log inserts (single writer only).
//
// An append checked against the group cache does not insert its entry at
// once: it queues it, and the queue is written with multi-row INSERTs (one
// statement per up to insertRows entries) before the transaction commits,
// or earlier, before any other kind of op runs, so that every op still sees
// the appends queued before it. The appends then share the statements'
// fixed costs, and sequence numbers are handed out when the entries are
// written.
//
// A resend of a stored message id makes its multi-row INSERT change fewer
// rows than it was given. Then the entries it did insert are deleted again
// and the queue is written one entry at a time as before: an insert that
// ignores a known id, and a look-up of the stored copy's seq only for the
// ignored ones. So resends cost what they cost before, and seqs stay
// without holes.
//
// The multi-row INSERT is SQLite's INSERT OR IGNORE (only the SQLite
// backend is a single writer): no row can make the statement abort, so
// SQLite keeps no statement journal for it, which would copy every page
// the statement touches that the transaction had touched before.

// pendingLog is one queued group-log entry.
type pendingLog struct {
	g   *cachedGroup
	e   store.LogEntry
	seq *uint64 // receives the entry's seq (or its stored copy's)
}

// insertRowSizes are the row counts of the prepared multi-row INSERTs,
// largest first; a queue is written with the fewest statements of these
// sizes.
var insertRowSizes = [...]int{64, 16, 4, 1}

// qInsertLogRows[i] inserts insertRowSizes[i] entries, ignoring any whose
// message id (or seq) is already in its group's log, or that break any other
// constraint (the one-by-one insert then reports it).
var qInsertLogRows = func() (qs [len(insertRowSizes)]string) {
	for i, n := range insertRowSizes {
		var b strings.Builder
		b.WriteString(`INSERT OR IGNORE INTO group_log
		(group_id, seq, message_id, epoch, kind, sender_account, sender_device, created_at, data) VALUES `)
		for r := 0; r < n; r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		}
		qs[i] = b.String()
	}
	return qs
}()

// qUndoPending deletes an entry written by a multi-row INSERT whose batch
// is written again one by one.
const qUndoPending = `DELETE FROM group_log WHERE group_id = ? AND seq = ? AND message_id = ?`

// queue defers the insert of e, whose group g has been checked; *seq is set
// when it is written.
func (c *groupCache) queue(id store.GroupID, g *cachedGroup, e store.LogEntry, seq *uint64) {
	c.pending = append(c.pending, pendingLog{g: g, e: e, seq: seq})
	c.dirty[id] = g // kept in the cache until flushed
}

// flushPending writes the queued entries.
func (c *groupCache) flushPending(ctx context.Context, tx WriteTx) error {
	if len(c.pending) == 0 {
		return nil
	}
	ok, err := c.insertAll(ctx, tx)
	if err != nil {
		return err
	}
	if !ok {
		if err := c.insertOneByOne(ctx, tx); err != nil {
			return err
		}
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	return nil
}

// insertAll writes the queue with multi-row INSERTs. It reports false,
// having undone them, if any entry was not inserted.
func (c *groupCache) insertAll(ctx context.Context, tx WriteTx) (bool, error) {
	clear(c.next)
	for i := range c.pending {
		p := &c.pending[i]
		next, ok := c.next[p.g]
		if !ok {
			next = p.g.lastSeq
		}
		next++
		c.next[p.g], p.e.Seq = next, next
	}
	var inserted int64
	rest := c.pending
	for len(rest) > 0 {
		k := 0
		for insertRowSizes[k] > len(rest) {
			k++
		}
		n := insertRowSizes[k]
		args := c.args[:0]
		for _, p := range rest[:n] {
			e := &p.e
			args = append(args, []byte(e.Group), i64(e.Seq), e.ID[:], i64(e.Epoch), int64(e.Kind),
				string(e.Sender.Account), e.Sender.Device[:], nanos(e.CreatedAt), e.Data)
		}
		m, err := tx.Exec(ctx, qInsertLogRows[k], args...)
		clear(args)
		c.args = args[:0]
		if err != nil {
			return false, fmt.Errorf("failed to append to group log: %w", err)
		}
		inserted += m
		rest = rest[n:]
	}
	if inserted != int64(len(c.pending)) {
		// Only entries inserted just now have their id at their seq: an
		// earlier copy of an id has a seq the cache had already passed.
		for _, p := range c.pending {
			e := &p.e
			if _, err := tx.Exec(ctx, qUndoPending, []byte(e.Group), i64(e.Seq), e.ID[:]); err != nil {
				return false, fmt.Errorf("failed to append to group log: %w", err)
			}
		}
		return false, nil
	}
	for _, p := range c.pending {
		p.g.lastSeq, *p.seq = p.e.Seq, p.e.Seq
	}
	return true, nil
}

// insertOneByOne writes the queue one entry at a time, giving a resend its
// stored copy's seq.
func (c *groupCache) insertOneByOne(ctx context.Context, tx WriteTx) error {
	for _, p := range c.pending {
		e := &p.e
		e.Seq = p.g.lastSeq + 1
		n, err := tx.Exec(ctx, qInsertLogIfNew, []byte(e.Group), i64(e.Seq), e.ID[:], i64(e.Epoch), int64(e.Kind),
			string(e.Sender.Account), e.Sender.Device[:], nanos(e.CreatedAt), e.Data)
		if err != nil {
			return fmt.Errorf("failed to append to group log: %w", err)
		}
		if n == 1 {
			p.g.lastSeq, *p.seq = e.Seq, e.Seq
			continue
		}
		seq, found, err := logDup(ctx, tx, e.Group, e.ID)
		if err != nil {
			return err
		}
		if !found {
			// The seq was taken although the cache said it was free.
			return fmt.Errorf("failed to append to group log: seq %d already used", e.Seq)
		}
		*p.seq = seq
	}
	return nil
}
