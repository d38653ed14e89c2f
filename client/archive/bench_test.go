package archive

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// benchArchive fills a Remote with n messages across 10 conversations,
// written as segments the way Upload writes them.
func benchArchive(b *testing.B, n int) (*memRemote, *Keyring) {
	b.Helper()
	rnd := testRand(30)
	raw := newMemRemote()
	ring, _ := NewKeyring(rnd)
	a := &Archiver{cfg: Config{Remote: raw, Keyring: ring, Device: device(1), Rand: rnd, Now: time.Now}}
	senders := []identity.AccountID{newAccount(b, rnd), newAccount(b, rnd), newAccount(b, rnd)}
	var chats []store.ChatID
	for i := range 10 {
		chats = append(chats, store.ChatIDFromGroup(store.GroupID(fmt.Sprintf("bench-%d", i))))
	}
	var recs []Record
	base := time.Unix(1_800_000_000, 0)
	for i := range n {
		id, _ := store.NewMessageID(rnd)
		m := &store.Message{ID: id, Chat: chats[i%len(chats)], Seq: uint64(i/len(chats) + 1), Kind: store.KindText,
			Sender: senders[i%3], SenderDevice: device(byte(i % 3)), State: store.StateReceived,
			SentAt: base.Add(time.Duration(i) * time.Second),
			Body:   fmt.Appendf(nil, "message number %d, about the weather and a plan for the weekend %x", i, uint32(rnd.Uint64()))}
		recs = append(recs, Record{Message: m})
		if len(recs) == segmentTargetRecords || i == n-1 {
			if _, err := a.putSegment(context.Background(), recs, &IndexEntry{Created: base, Device: device(1), Counter: uint64(i)}); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	return raw, ring
}

// BenchmarkRestore100k restores 100,000 messages into a fresh store:
// fetching, decrypting, decompressing, decoding and writing them.
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	raw, ring := benchArchive(b, n)
	for _, tc := range []struct {
		transport string
		batch     int
	}{{"mem", 0}, {"http", 0}} {
		transport, batch := tc.transport, tc.batch
		b.Run(transport, func(b *testing.B) {
			var cpu time.Duration
			var remote Remote = raw
			if transport == "http" {
				remote = newHTTPRemote(b, raw)
			}
			for b.Loop() {
				b.StopTimer()
				st, err := store.Create(context.Background(), b.TempDir(), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				cpu0 := cpuTime()
				b.StartTimer()
				res, err := Restore(context.Background(), st, remote, ring, RestoreOptions{BatchSize: batch})
				b.StopTimer()
				cpu += cpuTime() - cpu0
				if err != nil || res.Inserted != n {
					b.Fatalf("restore: %+v %v", res, err)
				}
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			// CPU seconds used by the whole process (client, HTTP server,
			// SQLite) per restore: the machine is shared, so wall time
			// includes waiting for other processes' use of the two cores.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkArchiveOverhead uploads 10,000 messages from a store and
// reports the bytes stored per message, and those beyond the bodies.
func BenchmarkArchiveOverhead(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	st, err := store.Create(ctx, b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, _, _ := buildHistory(b, st, n, 31)
	bodies := 0
	for _, c := range h.chats {
		for _, m := range scanAll(b, st, c.ID) {
			bodies += len(m.Body)
		}
	}
	ring, _ := NewKeyring(h.rnd)
	var res *UploadResult
	for b.Loop() {
		b.StopTimer()
		if err := st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(CursorSetting) }); err != nil {
			b.Fatal(err)
		}
		a, _ := New(Config{Store: st, Remote: newMemRemote(), Keyring: ring, Device: h.dev, Rand: h.rnd})
		b.StartTimer()
		if res, err = a.Upload(ctx); err != nil || res.Records < n {
			b.Fatalf("upload: %+v %v", res, err)
		}
	}
	b.ReportMetric(float64(res.Bytes)/n, "B/msg")
	b.ReportMetric(float64(res.Bytes-int64(bodies))/n, "overhead-B/msg")
	b.ReportMetric(float64(bodies)/n, "body-B/msg")
}
