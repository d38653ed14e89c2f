package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/parley-im/parley/client/store"
)

// Progress reports a restore's advance.
type Progress struct {
	// SegmentsDone of SegmentsTotal segments are downloaded and decrypted.
	SegmentsDone, SegmentsTotal int
	// MessagesMerged of MessagesTotal message records are written to the
	// store (MessagesTotal is known once every segment is in).
	MessagesMerged, MessagesTotal int
}

// RestoreOptions tune [Restore].
type RestoreOptions struct {
	// Progress, if set, is called after each segment and each batch of
	// merged messages, from the goroutine that called Restore.
	Progress func(Progress)
	// BatchSize is the number of messages written per store transaction;
	// zero means 5000. Live traffic's transactions run between batches.
	BatchSize int
}

// RestoreResult says what [Restore] did.
type RestoreResult struct {
	Progress
	// Inserted is the number of messages the store did not have.
	Inserted int
	// Tombstoned is the number of messages the store had that the archive
	// says are deleted, now deleted.
	Tombstoned int
	// Conflicts is the number of records refused by the store (their
	// sequence number is held by another message, or a field is invalid).
	Conflicts int
	// ReadMarks is the number of read marks applied; marks of
	// conversations the store does not have are skipped.
	ReadMarks int
	// Conversations is the number of conversations the store did not have,
	// created from the archive.
	Conversations int
}

// Restore downloads, decrypts and merges the whole archive into st: the
// conversations st lacks (newest record wins; a deleted conversation and
// its messages stay out), then every message in server order per
// conversation, deduplicated by id, then the read marks. A deleted
// message's newest form (its tombstone) wins over any earlier copy, so
// deleted and expired messages come back as tombstones without content; of
// two copies of a live message the one in the later segment wins. Messages
// are written with the store's transactions in batches, so live messages
// stored meanwhile are kept, and a message already stored is left as it is
// unless the archive says it is deleted. The conversations and read marks
// restored are recorded as uploaded, and so are the messages each batch
// wrote ([RestoredSetting], saved with the batch), so restoring alone
// uploads none of them again, even when the restore is interrupted and run
// again; messages stored meanwhile by anything else are uploaded as usual.
func Restore(ctx context.Context, st *store.Store, remote Remote, ring *Keyring, opts RestoreOptions) (*RestoreResult, error) {
	if st == nil || remote == nil || ring == nil {
		return nil, invalidf("restore needs a store, a remote and a keyring")
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 5000
	}
	report := func(p Progress) {
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	refs, err := loadIndex(ctx, remote, ring)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Progress: Progress{SegmentsTotal: len(refs)}}
	report(res.Progress)
	latest := map[store.MessageID]*store.Message{}
	reads := map[store.ChatID]uint64{}
	var convs convMerge
	err = fetchSegments(ctx, remote, refs, func(i int, recs []Record) error {
		for _, r := range recs {
			if r.Conv != nil {
				convs.add(r.Conv)
				continue
			}
			if r.Read != nil {
				reads[r.Read.Chat] = max(reads[r.Read.Chat], r.Read.Seq)
				continue
			}
			m := r.Message
			if prev, ok := latest[m.ID]; ok && (prev.Deleted || prev.Chat != m.Chat) {
				continue // deletion is final; a record moving chats is ignored
			}
			latest[m.ID] = m
		}
		res.SegmentsDone = i + 1
		report(res.Progress)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Conversations, err = convs.apply(ctx, st); err != nil {
		return nil, err
	}
	msgs := make([]*store.Message, 0, len(latest))
	for _, m := range latest {
		if !convs.deleted(m.Chat) {
			msgs = append(msgs, m)
		}
	}
	clear(latest)
	slices.SortFunc(msgs, func(a, b *store.Message) int {
		return cmp.Or(cmp.Compare(a.Chat, b.Chat), cmp.Compare(a.Seq, b.Seq))
	})
	res.MessagesTotal = len(msgs)
	archived := make(map[store.MessageID]bool, len(msgs))
	for _, m := range msgs {
		archived[m.ID] = true
	}
	report(res.Progress)
	for len(msgs) > 0 {
		n := min(batch, len(msgs))
		part := msgs[:n]
		var ins, tomb, conf int
		err := st.Update(ctx, func(tx *store.Tx) error {
			ins, tomb, conf = 0, 0, 0
			mark, err := tx.ChangeMark()
			if err != nil {
				return err
			}
			copies := make([]store.Message, len(part))
			ptrs := make([]*store.Message, len(part))
			for i, m := range part {
				copies[i] = *m
				ptrs[i] = &copies[i]
			}
			outcomes, err := tx.InsertMessages(ptrs)
			if err != nil {
				return err
			}
			for i, m := range part {
				switch outcomes[i] {
				case store.Refused:
					conf++
					continue
				case store.Inserted:
					ins++
					continue
				}
				if m.Deleted {
					cur, err := tx.Message(m.ID)
					if err != nil {
						return err
					}
					if !cur.Deleted {
						if err := tx.DeleteMessage(m.ID, m.DeletedAt); err != nil {
							return err
						}
						tomb++
					}
				}
			}
			return recordRestored(tx, mark, archived)
		})
		if err != nil {
			return nil, fmt.Errorf("failed to merge archived messages: %w", err)
		}
		res.Inserted += ins
		res.Tombstoned += tomb
		res.Conflicts += conf
		res.MessagesMerged += n
		msgs = msgs[n:]
		report(res.Progress)
	}
	if len(reads) > 0 {
		err := st.Update(ctx, func(tx *store.Tx) error {
			res.ReadMarks = 0
			for chat, seq := range reads {
				err := tx.MarkRead(chat, seq)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				// The archive holds this mark: only a later one is uploaded.
				name := readSettingPrefix + string(chat)
				v, ok, err := tx.Setting(name)
				if err != nil {
					return err
				}
				if up, perr := strconv.ParseUint(v, 10, 64); !ok || perr != nil || up < seq {
					if err := tx.SetSetting(name, strconv.FormatUint(seq, 10)); err != nil {
						return err
					}
				}
				res.ReadMarks++
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to merge read marks: %w", err)
		}
	}
	return res, nil
}

// recordRestored saves in [RestoredSetting] the change numbers that tx
// gave, since mark, to rows of messages the archive holds (an insert, a
// tombstone, an edit applied): their new form is what merging the archive
// makes, so uploading it again adds nothing. Rows of other messages the
// batch changed (a live message edited or deleted by an archived event)
// stay in the upload feed.
func recordRestored(tx *store.Tx, mark store.ChangeSeq, archived map[store.MessageID]bool) error {
	changed, err := tx.ChangedSince(mark)
	if err != nil || len(changed) == 0 {
		return err
	}
	cs := make([]store.ChangeSeq, 0, len(changed))
	for _, c := range changed {
		if archived[c.ID] {
			cs = append(cs, c.Change)
		}
	}
	return saveRestored(tx, cs)
}
