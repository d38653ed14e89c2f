package storetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
)

// BenchPayload is the size of the opaque message the benchmarks append.
const BenchPayload = 256

// Bench measures durable group-log appends per second with 1, 16 and 256
// concurrent writers, each appending to its own group (as in a relay of many
// conversations), and with 256 writers appending to one group (one busy
// conversation). newStore opens a fresh store for each sub-benchmark.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	for _, c := range []struct{ writers, groups int }{{1, 1}, {16, 16}, {256, 256}, {256, 1}} {
		b.Run(fmt.Sprintf("writers=%d/groups=%d", c.writers, c.groups), func(b *testing.B) {
			benchAppend(b, newStore(b), c.writers, c.groups)
		})
	}
}

func benchAppend(b *testing.B, s store.Store, writers, nGroups int) {
	defer func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	}()
	ctx := context.Background()
	a := newAccount(b, s, "bench", 1)
	sender := a.ref(0)
	groups := make([]store.GroupID, nGroups)
	for i := range groups {
		groups[i] = newGroup(b, s, fmt.Sprintf("bench-%d", i), sender)
	}
	payload := make([]byte, BenchPayload)
	var next atomic.Int64
	var failed atomic.Value
	b.SetBytes(BenchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := store.Message{Group: groups[w%nGroups], Epoch: 0, Kind: store.KindApplication, Sender: sender, Data: payload, At: t0}
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				binary.BigEndian.PutUint64(m.ID[:], uint64(n))
				if _, err := s.AppendMessage(ctx, m); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatalf("AppendMessage: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if cpu > 0 {
		// CPU of the whole process (the database too, for SQLite) per message.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
}
