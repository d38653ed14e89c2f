package archive

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

func testRand(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return mrand.NewChaCha8(s)
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Create(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newAccount(t testing.TB, rnd *mrand.ChaCha8) identity.AccountID {
	t.Helper()
	k, err := identity.GenerateAccountKey(rnd)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func device(b byte) identity.DeviceID {
	var d identity.DeviceID
	for i := range d {
		d[i] = b
	}
	return d
}

// history is a generated account history in a store.
type history struct {
	st      *store.Store
	dev     identity.DeviceID
	me      identity.AccountID
	chats   []*store.Conversation
	secrets []string // texts of messages deleted or expired
	base    time.Time
	nextSeq map[store.ChatID]uint64
	rnd     *mrand.ChaCha8
}

func (h *history) msgID() store.MessageID {
	id, _ := store.NewMessageID(h.rnd)
	return id
}

// build stores n messages across the chats: text from us and from two other
// accounts, replies, reactions, edits, and messages that will be deleted or
// expire (their texts are recorded in secrets). It returns the ids to delete
// for everyone (with their senders) and for me.
func buildHistory(t testing.TB, st *store.Store, n int, seed uint64) (*history, []*store.Message, []store.MessageID) {
	t.Helper()
	ctx := context.Background()
	rnd := testRand(seed)
	h := &history{st: st, dev: device(7), me: newAccount(t, rnd), base: time.Unix(1_800_000_000, 0).UTC(),
		nextSeq: map[store.ChatID]uint64{}, rnd: rnd}
	others := []identity.AccountID{newAccount(t, rnd), newAccount(t, rnd)}
	for i := range 4 {
		g := store.GroupID(fmt.Sprintf("group-%d-%d", seed, i))
		h.chats = append(h.chats, &store.Conversation{ID: store.ChatIDFromGroup(g), Kind: store.ChatGroup, Group: g,
			Name: fmt.Sprintf("chat %d", i), CreatedAt: h.base})
	}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		for _, c := range h.chats {
			if err := tx.PutConversation(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var forEveryone []*store.Message
	var forMe []store.MessageID
	last := map[store.ChatID]*store.Message{}
	var batch []*store.Message
	flush := func() {
		if _, err := st.Apply(ctx, &store.Batch{Now: h.base, Messages: batch}); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		c := h.chats[i%len(h.chats)].ID
		h.nextSeq[c]++
		m := &store.Message{ID: h.msgID(), Chat: c, Seq: h.nextSeq[c], Kind: store.KindText,
			SentAt: h.base.Add(time.Duration(i) * time.Second), State: store.StateReceived}
		switch i % 3 {
		case 0:
			m.Sender, m.SenderDevice, m.Mine, m.State = h.me, h.dev, true, store.StateSent
		default:
			m.Sender, m.SenderDevice = others[i%3-1], device(byte(i%3))
		}
		m.Body = fmt.Appendf(nil, "message %d in %s: %x", i, c, rnd.Uint64())
		prev := last[c]
		switch {
		case i%40 == 7:
			s := fmt.Sprintf("SECRET-DEL-%d-%x", i, rnd.Uint64())
			m.Body = []byte(s)
			h.secrets = append(h.secrets, s)
			if i%80 == 7 {
				forMe = append(forMe, m.ID)
			} else {
				forEveryone = append(forEveryone, m)
			}
		case i%60 == 11:
			s := fmt.Sprintf("SECRET-EXP-%d-%x", i, rnd.Uint64())
			m.Body = []byte(s)
			m.ExpiresAt = h.base.Add(time.Hour + time.Duration(i)*time.Second)
			h.secrets = append(h.secrets, s)
		case i%50 == 13 && prev != nil:
			m.Kind, m.Target, m.Body = store.KindReaction, prev.ID, []byte("👍")
		case i%30 == 17 && prev != nil:
			m.Kind, m.Target = store.KindReply, prev.ID
		case i%97 == 19 && prev != nil && prev.Kind == store.KindText && prev.Sender == m.Sender:
			m.Kind, m.Target, m.Body = store.KindEdit, prev.ID, fmt.Appendf(nil, "edited %d", i)
		}
		if m.Kind == store.KindText || m.Kind == store.KindReply {
			last[c] = m
		}
		batch = append(batch, m)
		if len(batch) == 1000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return h, forEveryone, forMe
}

// deleteAndExpire deletes for everyone (KindDelete events from the
// senders), deletes for me, expires the disappearing messages, and moves
// read marks.
func (h *history) deleteAndExpire(t testing.TB, forEveryone []*store.Message, forMe []store.MessageID) {
	t.Helper()
	ctx := context.Background()
	var events []*store.Message
	for _, target := range forEveryone {
		h.nextSeq[target.Chat]++
		events = append(events, &store.Message{ID: h.msgID(), Chat: target.Chat, Seq: h.nextSeq[target.Chat],
			Kind: store.KindDelete, Target: target.ID, Sender: target.Sender, SenderDevice: target.SenderDevice,
			Mine: target.Mine, State: target.State, SentAt: h.base.Add(24 * time.Hour)})
	}
	if _, err := h.st.Apply(ctx, &store.Batch{Now: h.base, Messages: events}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Update(ctx, func(tx *store.Tx) error {
		for _, id := range forMe {
			if err := tx.DeleteMessage(id, h.base.Add(25*time.Hour)); err != nil {
				return err
			}
		}
		for {
			done, err := tx.ExpireMessages(h.base.Add(48*time.Hour), store.MaxPageSize)
			if err != nil {
				return err
			}
			if len(done) < store.MaxPageSize {
				break
			}
		}
		for i, c := range h.chats {
			if err := tx.MarkRead(c.ID, uint64(100+i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// scanAll returns every row of chat in order.
func scanAll(t testing.TB, st *store.Store, chat store.ChatID) []*store.Message {
	t.Helper()
	var out []*store.Message
	var after store.Position
	for {
		page, err := st.Scan(context.Background(), chat, after, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < store.MaxPageSize {
			return out
		}
		after = page[len(page)-1].Position
	}
}

// sameMessage compares what a restored message must keep.
func sameMessage(a, b *store.Message) bool {
	return a.ID == b.ID && a.Chat == b.Chat && a.Seq == b.Seq && a.Kind == b.Kind && a.Mine == b.Mine &&
		a.Target == b.Target && a.Sender == b.Sender && a.SenderDevice == b.SenderDevice && bytes.Equal(a.Body, b.Body) &&
		a.Deleted == b.Deleted && a.State == b.State && a.SentAt.Equal(b.SentAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.EditedAt.Equal(b.EditedAt) && a.DeletedAt.Equal(b.DeletedAt)
}

// decryptAll opens every segment of the remote with ring and returns each
// segment's decompressed plaintext.
func decryptAll(t testing.TB, r Remote, ring *Keyring) [][]byte {
	t.Helper()
	ctx := context.Background()
	names, err := r.List(ctx, SegmentPrefix)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.List(ctx, KeyRecordPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(names) {
		t.Fatalf("%d segments but %d key records", len(names), len(keys))
	}
	var out [][]byte
	for _, n := range names {
		id, ok := parseBlobName(n, SegmentPrefix)
		if !ok {
			t.Fatalf("bad segment name %q", n)
		}
		kr, err := r.Get(ctx, KeyRecordBlob(id))
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := openKeyRecord(ring, id, kr)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := r.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openSegment(id, &key, blob); err != nil {
			t.Fatal(err)
		}
		plain, err := openSegmentRaw(id, &key, blob)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, plain)
	}
	return out
}
