package store

import (
	"context"
	"time"
)

// Batch is everything that processing one page of server input changes,
// written in ONE transaction by [Store.Apply]: MLS group states, the
// conversations and messages they produced, key packages used to join, and
// the server cursors past the input. A crash leaves all of it or none of it:
// never a group state advanced past a message that was lost, nor a message
// stored under a group state that will process it again, nor a cursor past
// either.
type Batch struct {
	// Now stamps the group states.
	Now time.Time
	// Conversations are created or replaced (joined groups, renames, ...).
	Conversations []*Conversation
	// GroupStates replace the state of their groups.
	GroupStates []GroupStateUpdate
	// UsedKeyPackages are deleted (their one-time use has happened).
	UsedKeyPackages []KeyPackageRef
	// Messages are inserted; duplicates are skipped.
	Messages []*Message
	// Cursors advance (never backwards).
	Cursors []CursorUpdate
}

// GroupStateUpdate is a new state for one group.
type GroupStateUpdate struct {
	Group GroupID
	State GroupState
}

// CursorUpdate advances one stream's cursor.
type CursorUpdate struct {
	Stream Stream
	Seq    uint64
}

// BatchResult says what Apply did.
type BatchResult struct {
	// Inserted[i] is false when Messages[i] was already stored.
	Inserted []bool
}

// Apply writes b in one durable transaction (see [Batch]). On error nothing
// of b is kept.
func (s *Store) Apply(ctx context.Context, b *Batch) (*BatchResult, error) {
	if b == nil {
		return nil, invalidf("nil batch")
	}
	res := &BatchResult{Inserted: make([]bool, len(b.Messages))}
	err := s.Update(ctx, func(tx *Tx) error { return tx.Apply(b, res) })
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Apply writes b inside this transaction, recording what it did in res (which
// may be nil), for callers that add writes of their own to the batch's
// transaction.
func (tx *Tx) Apply(b *Batch, res *BatchResult) error {
	for _, c := range b.Conversations {
		if err := tx.PutConversation(c); err != nil {
			return err
		}
	}
	for _, g := range b.GroupStates {
		if err := tx.PutGroupState(g.Group, g.State, b.Now); err != nil {
			return err
		}
	}
	for _, ref := range b.UsedKeyPackages {
		if err := tx.DeleteKeyPackage(ref); err != nil {
			return err
		}
	}
	for i, m := range b.Messages {
		ok, err := tx.InsertMessage(m)
		if err != nil {
			return err
		}
		if res != nil && i < len(res.Inserted) {
			res.Inserted[i] = ok
		}
	}
	for _, c := range b.Cursors {
		if err := tx.AdvanceCursor(c.Stream, c.Seq); err != nil {
			return err
		}
	}
	return nil
}
