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
// conversation); then mailbox deliveries by 256 writers to 64 devices.
// newStore opens a fresh store with [BenchOptions] for each sub-benchmark.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	for _, c := range []struct{ writers, groups int }{{1, 1}, {16, 16}, {256, 256}, {256, 1}} {
		b.Run(fmt.Sprintf("writers=%d/groups=%d", c.writers, c.groups), func(b *testing.B) {
			benchAppend(b, newStore(b), c.writers, c.groups)
		})
	}
	b.Run("deliver/writers=256/devices=64", func(b *testing.B) {
		benchDeliver(b, newStore(b), 256, 64)
	})
}

// BenchOptions are the options [Bench] expects: mailboxes large enough for
// any run.
func BenchOptions() store.Options {
	return store.Options{MailboxLimit: 1 << 30}
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
	run(b, writers, func(w int) func(n int64) error {
		m := store.Message{Group: groups[w%nGroups], Epoch: 0, Kind: store.KindApplication, Sender: sender, Data: payload, At: t0}
		return func(n int64) error {
			binary.BigEndian.PutUint64(m.ID[:], uint64(n))
			_, err := s.AppendMessage(ctx, m)
			return err
		}
	})
}

var payload = make([]byte, BenchPayload)

func benchDeliver(b *testing.B, s store.Store, writers, devices int) {
	defer func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	}()
	ctx := context.Background()
	a := newAccount(b, s, "bench", devices)
	run(b, writers, func(w int) func(n int64) error {
		m := store.MailboxMessage{To: a.ref(w % devices), Kind: store.MailOther, Data: payload, At: t0}
		return func(n int64) error {
			binary.BigEndian.PutUint64(m.ID[:], uint64(n))
			_, err := s.Deliver(ctx, m)
			return err
		}
	})
}

// run calls the function that each of the writers makes b.N times in all
// and reports writes/s and CPU per write.
func run(b *testing.B, writers int, writer func(w int) func(n int64) error) {
	var next atomic.Int64
	var failed atomic.Value
	b.SetBytes(BenchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		write := writer(w)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if err := write(n); err != nil {
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
		b.Fatalf("write: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if cpu > 0 {
		// CPU of the whole process (the database too, for SQLite) per message.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
}
