package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
)

func benchID(n int) MessageID {
	var id MessageID
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	id[0] = 0xbb
	return id
}

// BenchmarkInsertMessage measures storing received messages (encryption
// included) in batches of 1 (one fsync each) and 100 (one fsync per batch,
// as sync applies a fetched page).
func BenchmarkInsertMessage(b *testing.B) {
	for _, batch := range []int{1, 100} {
		for _, size := range []int{100, 1000} {
			b.Run(fmt.Sprintf("batch=%d/body=%d", batch, size), func(b *testing.B) {
				s, _ := newStore(b)
				c := newChat(b, s, "bench")
				sender := newAccount(b)
				body := make([]byte, size)
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				n := 0
				for n < b.N {
					k := min(batch, b.N-n)
					msgs := make([]*Message, k)
					for i := range msgs {
						n++
						msgs[i] = &Message{ID: benchID(n), Chat: c.ID, Seq: uint64(n), Sender: sender, Kind: KindText, Body: body, State: StateReceived, SentAt: t0}
					}
					if _, err := s.Apply(ctx, &Batch{Messages: msgs, Cursors: []CursorUpdate{{Stream: GroupStream(c.Group), Seq: uint64(n)}}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHistoryPage measures reading (and decrypting) one page of 50
// messages from the middle of a 10,000-message conversation.
func BenchmarkHistoryPage(b *testing.B) {
	s, _ := newStore(b)
	c := newChat(b, s, "bench")
	sender := newAccount(b)
	ctx := context.Background()
	const total = 10000
	for start := 0; start < total; start += 1000 {
		msgs := make([]*Message, 0, 1000)
		for i := start + 1; i <= start+1000; i++ {
			msgs = append(msgs, &Message{ID: benchID(i), Chat: c.ID, Seq: uint64(i), Sender: sender, Kind: KindText, Body: make([]byte, 200), State: StateReceived, SentAt: t0})
		}
		if _, err := s.Apply(ctx, &Batch{Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		before := Position(total/2 + i%1000)
		page, err := s.History(ctx, c.ID, HistoryQuery{Before: before, Limit: 50})
		if err != nil || len(page.Messages) != 50 {
			b.Fatalf("page: %d messages, %v", len(page.Messages), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/msg")
}
