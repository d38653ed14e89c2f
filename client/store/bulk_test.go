package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// bulkMix is a restore-like mix of messages over two chats: texts, replies,
// edits and deletions before and after their targets, reactions,
// tombstones, pending messages of ours, a sequence number taken by another
// id, repeated ids, invalid messages.
func bulkMix(t *testing.T, seed uint64, chats []*Conversation, n int) []*Message {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	bob := newAccount(t)
	var out []*Message
	seq := map[ChatID]uint64{}
	next := func(c ChatID) uint64 { seq[c]++; return seq[c] }
	for i := range n {
		c := chats[rnd.IntN(len(chats))].ID
		m := textMsg(c, 1000+i, bob, next(c), fmt.Sprintf("bulk %d", i))
		// Events name a target up to 20 ids away, before or after it.
		target := msgID(1000 + max(0, min(n-1, i+rnd.IntN(41)-20)))
		switch r := rnd.IntN(100); {
		case r < 8:
			m.Kind, m.Target, m.Body = KindEdit, target, []byte(fmt.Sprintf("edited %d", i))
		case r < 12:
			m.Kind, m.Target, m.Body = KindDelete, target, nil
		case r < 17:
			m.Kind, m.Target, m.Body = KindReaction, target, []byte("+")
		case r < 20:
			m.Kind, m.Target = KindReply, target
		case r < 26:
			m.Deleted, m.DeletedAt, m.Body = true, t0.Add(time.Hour), nil
		case r < 28:
			m.Seq = 0 // pending, ours
			m.Mine, m.State = true, StatePending
		case r < 30 && len(out) > 0:
			prev := out[rnd.IntN(len(out))]
			m.Chat, m.Seq = prev.Chat, prev.Seq // the sequence number is taken
		case r < 32 && len(out) > 0:
			cp := *out[rnd.IntN(len(out))] // the same id again
			m = &cp
		case r < 33:
			m.Kind = 99 // invalid
		}
		out = append(out, m)
	}
	return out
}

func bulkSnapshot(t *testing.T, s *Store, chats []*Conversation) []*Message {
	t.Helper()
	var all []*Message
	for _, c := range chats {
		var after Position
		for {
			page, err := s.Scan(context.Background(), c.ID, after, MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if len(page) < MaxPageSize {
				break
			}
			after = page[len(page)-1].Position
		}
	}
	return all
}

func cloneAll(ms []*Message) []*Message {
	out := make([]*Message, len(ms))
	for i, m := range ms {
		c := *m
		out[i] = &c
	}
	return out
}

// TestInsertMessagesMatchesInsertMessage: the bulk path leaves the store
// as InsertMessage on each message in order would (contents, positions,
// edits and deletions applied; unique change numbers), with the same
// outcomes, on an empty store and on one that already holds some of the
// messages (pending ones of ours among them).
func TestInsertMessagesMatchesInsertMessage(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			one, _ := newStore(t)
			bulk, _ := newStore(t)
			var chats []*Conversation
			for _, name := range []string{"a", "b"} {
				chats = append(chats, newChat(t, one, name))
				newChat(t, bulk, name)
			}
			mix := bulkMix(t, seed, chats, 700)
			// Both stores hold some of the messages beforehand, among them
			// pending copies of ours that the mix then orders.
			var pre []*Message
			for i := 0; i < len(mix); i += 37 {
				m := *mix[i]
				if i%74 == 0 && m.Seq > 0 && !m.Deleted {
					m.Seq, m.Mine, m.State = 0, true, StatePending
				}
				pre = append(pre, &m)
			}
			for _, s := range []*Store{one, bulk} {
				update(t, s, func(tx *Tx) error {
					for _, m := range cloneAll(pre) {
						if _, err := tx.insertOne(m); err != nil {
							return err
						}
					}
					return nil
				})
			}
			var want []InsertOutcome
			update(t, one, func(tx *Tx) error {
				for _, m := range cloneAll(mix) {
					o, err := tx.insertOne(m)
					if err != nil {
						return err
					}
					want = append(want, o)
				}
				return nil
			})
			var got []InsertOutcome
			update(t, bulk, func(tx *Tx) error {
				var err error
				got, err = tx.InsertMessages(cloneAll(mix))
				return err
			})
			if !reflect.DeepEqual(got, want) {
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("message %d (%+v): outcome %d, InsertMessage gives %d", i, mix[i], got[i], want[i])
					}
				}
			}
			counts := map[InsertOutcome]int{}
			for _, o := range got {
				counts[o]++
			}
			if counts[Inserted] < 400 || counts[Existed] == 0 || counts[Refused] == 0 {
				t.Fatalf("the mix does not exercise every outcome: %v", counts)
			}
			a, b := bulkSnapshot(t, one, chats), bulkSnapshot(t, bulk, chats)
			if len(a) != len(b) {
				t.Fatalf("bulk store holds %d messages, the other %d", len(b), len(a))
			}
			changes := map[ChangeSeq]bool{}
			for i := range a {
				if changes[b[i].Change] {
					t.Fatalf("change number %d used twice", b[i].Change)
				}
				changes[b[i].Change] = true
				// Waiting events of a run are applied after the run, so
				// change numbers may come in another order.
				a[i].Change, b[i].Change = 0, 0
				if !reflect.DeepEqual(a[i], b[i]) {
					t.Fatalf("message %d differs:\n bulk %+v\n one  %+v", i, b[i], a[i])
				}
			}
		})
	}
}

// BenchmarkInsertMessages compares the bulk path with InsertMessage one by
// one, 5,000 new text messages per transaction.
func BenchmarkInsertMessages(b *testing.B) {
	bob := newAccount(b)
	for _, bulk := range []bool{false, true} {
		b.Run(map[bool]string{false: "one-by-one", true: "bulk"}[bulk], func(b *testing.B) {
			s, _ := newStore(b)
			c := newChat(b, s, "bench")
			n := 0
			for b.Loop() {
				ms := make([]*Message, 5000)
				for i := range ms {
					n++
					ms[i] = textMsg(c.ID, n, bob, uint64(n), "a message of a typical length, say sixty bytes long......")
					ms[i].ID[13] = byte(n >> 16)
				}
				update(b, s, func(tx *Tx) error {
					if bulk {
						_, err := tx.InsertMessages(ms)
						return err
					}
					for _, m := range ms {
						if _, err := tx.InsertMessage(m); err != nil {
							return err
						}
					}
					return nil
				})
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*5000), "µs/msg")
		})
	}
}
