package client

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley-im/parley/internal/testserver"
)

// benchPair makes two accounts with a 1:1 chat, without sync engines.
func benchPair(b *testing.B) (context.Context, *Client, *Client, ChatID) {
	srv := testserver.Start(b)
	ctx := context.Background()
	opts := Options{KeyPackageStock: 4}
	a, err := Init(ctx, b.TempDir(), srv.URL, opts)
	if err != nil {
		b.Fatal(err)
	}
	bob, err := Init(ctx, b.TempDir(), srv.URL, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); bob.Close() })
	chat, err := a.StartDirect(ctx, bob.Me().Address)
	if err != nil {
		b.Fatal(err)
	}
	if err := bob.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	return ctx, a, bob, chat
}

// BenchmarkSend measures one message: store it, queue it, encrypt it,
// send it and record the server's acknowledgement.
func BenchmarkSend(b *testing.B) {
	ctx, a, _, chat := benchPair(b)
	b.SetBytes(64)
	b.ResetTimer()
	for i := range b.N {
		if _, err := a.Send(ctx, chat, fmt.Sprintf("benchmark message %048d", i)); err != nil {
			b.Fatal(err)
		}
		if err := a.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive measures one message: fetch it, decrypt it, store it
// and acknowledge it (in batches, as sync does).
func BenchmarkReceive(b *testing.B) {
	ctx, a, bob, chat := benchPair(b)
	for i := range b.N {
		if _, err := a.Send(ctx, chat, fmt.Sprintf("benchmark message %048d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64)
	b.ResetTimer()
	cpu := processCPU()
	if err := bob.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	ms, err := chatMessages(ctx, bob, chat)
	if err != nil || len(ms) < min(b.N, 1000) {
		b.Fatalf("received %d of %d (%v)", len(ms), b.N, err)
	}
}

// BenchmarkSendQueued measures the engine's steady state: b.N messages
// queued, then sent by one flush (encrypt, store the ratchet, send, record
// the acknowledgement, per message).
func BenchmarkSendQueued(b *testing.B) {
	ctx, a, _, chat := benchPair(b)
	conn, err := a.connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		if _, err := a.Send(ctx, chat, fmt.Sprintf("benchmark message %048d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(64)
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n, err := a.flushOutbox(ctx, conn)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("sent %d of %d", sent, b.N)
		}
		sent += n
	}
}
