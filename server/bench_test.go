package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// BenchmarkRelay measures durable relay throughput: pairs of devices, each
// pair a group of two; every sender keeps a window of sends in flight and
// every receiver acks what is pushed to it. One op is one message stored
// durably and pushed to its recipient.
//
// store=sqlite is the real durable path. store=nullappend replaces only the
// group-log append and cursor ack with in-memory stand-ins, to measure the
// server's own cost (transport, decoding, routing, pushes) without the
// store's fsyncs; it is not a durability claim.
func BenchmarkRelay(b *testing.B) {
	for _, st := range []string{"sqlite", "nullappend"} {
		for _, pairs := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("store=%s/pairs=%d", st, pairs), func(b *testing.B) {
				benchRelay(b, st == "nullappend", pairs, 32, 256)
			})
		}
	}
}

// nullAppendStore answers appends and group acks from memory.
type nullAppendStore struct {
	store.Store
	seq atomic.Uint64
}

func (n *nullAppendStore) AppendMessage(_ context.Context, m store.Message) (uint64, error) {
	seq := n.seq.Add(1)
	if m.Visible != nil {
		m.Visible(seq)
	}
	return seq, nil
}

func (n *nullAppendStore) AckGroup(context.Context, store.DeviceRef, store.GroupID, uint64) error {
	return nil
}

func benchRelay(b *testing.B, nullAppend bool, pairs, window, size int) {
	var srv *ts.Server
	if nullAppend {
		srv = ts.Start(b, ts.WithConfig(func(c *server.Config) { c.Store = &nullAppendStore{Store: c.Store} }))
	} else {
		srv = ts.Start(b)
	}
	ctx := context.Background()
	type pair struct {
		send, recv *wireclient.Client
		group      []byte
	}
	ps := make([]pair, pairs)
	for i := range ps {
		alice, bob := srv.NewAccount(b), srv.NewAccount(b)
		group := []byte(fmt.Sprintf("bench-%d", i))
		ca := srv.Connect(b, alice.Devices[0])
		if err := ca.CreateGroup(ctx, group); err != nil {
			b.Fatal(err)
		}
		if _, err := ts.Commit(ctx, ca, group, 0, []byte("c"), []byte("w"), []*ts.Device{bob.Devices[0]}, nil); err != nil {
			b.Fatal(err)
		}
		ps[i] = pair{ca, srv.Connect(b, bob.Devices[0]), group}
	}
	payload := make([]byte, size)
	per := b.N/pairs + 1
	b.SetBytes(int64(size))
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(3)
		go func() { // drain the sender's own pushes
			defer wg.Done()
			for n := 0; n < per; n++ {
				if _, ok := <-p.send.Events(); !ok {
					return
				}
			}
		}()
		go func() { // receiver: ack in batches
			defer wg.Done()
			var refs []*wire.AckRef
			for n := 0; n < per; n++ {
				ev, ok := <-p.recv.Events()
				if !ok {
					b.Error("receiver closed")
					return
				}
				refs = append(refs, wireclient.RefOf(ev.GetDelivery()))
				if len(refs) == 64 || n == per-1 {
					if err := p.recv.Ack(ctx, refs, false); err != nil {
						b.Error(err)
						return
					}
					refs = refs[:0]
				}
			}
		}()
		go func() { // sender with a window of outstanding sends
			defer wg.Done()
			sem := make(chan struct{}, window)
			var sw sync.WaitGroup
			for n := 0; n < per; n++ {
				sem <- struct{}{}
				sw.Add(1)
				go func() {
					defer func() { <-sem; sw.Done() }()
					if _, err := p.send.SendMessage(ctx, p.group, 1, ts.MessageID(), payload); err != nil {
						b.Error(err)
					}
				}()
			}
			sw.Wait()
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/time.Since(start).Seconds(), "msgs/s")
	// CPU time of the process (server and clients) per message: less
	// sensitive than msgs/s to other load on the machine.
	b.ReportMetric(float64((cpuTime()-cpuStart).Microseconds())/float64(per*pairs), "cpu-µs/msg")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
