package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/wire"
)

// recorder is a Handler that collects messages and the end.
type recorder struct {
	msgs chan []byte
	end  chan error
}

func newRecorder() *recorder {
	return &recorder{msgs: make(chan []byte, 100), end: make(chan error, 1)}
}

func (r *recorder) Message(msg []byte) { r.msgs <- append([]byte(nil), msg...) }
func (r *recorder) End(err error)      { r.end <- err }

// pair returns a started server-side Conn, its recorder and the client
// WebSocket talking to it.
func pair(t *testing.T, opts Options) (*Conn, *recorder, *websocket.Conn) {
	t.Helper()
	got := make(chan *Conn, 1)
	rec := newRecorder()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			t.Error(err)
			return
		}
		c.Start(rec)
		got <- c
	}))
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetReadLimit(wire.MaxMessageSize)
	t.Cleanup(func() { _ = cl.CloseNow() })
	return <-got, rec, cl
}

func frame(id uint64, size int) *wire.Frame {
	return &wire.Frame{Id: id, Body: &wire.Frame_Error{Error: &wire.Error{Message: strings.Repeat("x", size)}}}
}

func TestSendOrderBatchAndClose(t *testing.T) {
	c, _, cl := pair(t, Options{})
	const n = 500
	for i := 1; i <= n; i++ {
		if err := c.Send(frame(uint64(i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(StatusNormalClosure, "bye")
	next, messages := uint64(1), 0
	ctx := context.Background()
	for {
		_, msg, err := cl.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("read: %v", err)
			}
			break
		}
		messages++
		err = wire.DecodeMessage(msg, func(f *wire.Frame, err error) error {
			if err != nil {
				return err
			}
			if f.GetId() != next {
				t.Fatalf("frame %d arrived, want %d", f.GetId(), next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if next != n+1 {
		t.Fatalf("got %d frames before close, want %d", next-1, n)
	}
	t.Logf("%d frames in %d messages", n, messages)
	if err := c.Send(frame(1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

// TestSlowConsumerGets1008 is a client that stops reading until the
// server gives up on it, then reads again: after what was already on its
// way it finds the close frame with status 1008 and the documented reason.
func TestSlowConsumerGets1008(t *testing.T) {
	c, _, cl := pair(t, Options{MaxQueueBytes: 256 << 10, WriteTimeout: time.Minute, CloseTimeout: 10 * time.Second})
	var err error
	sent := 0
	// Paced, so the writer keeps up until the socket buffers are full.
	for ; sent < 100000 && err == nil; sent++ {
		err = c.Send(frame(uint64(sent+1), 32<<10))
		time.Sleep(100 * time.Microsecond)
	}
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("never a slow consumer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frames := 0
	for {
		_, msg, err := cl.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read ended without a close frame after %d frames: %v", frames, err)
			}
			if ce.Code != websocket.StatusPolicyViolation || ce.Reason != SlowConsumerReason {
				t.Fatalf("closed with %d %q, want 1008 %q", ce.Code, ce.Reason, SlowConsumerReason)
			}
			break
		}
		_ = wire.DecodeMessage(msg, func(*wire.Frame, error) error { frames++; return nil })
	}
	if frames == 0 || frames >= sent {
		t.Fatalf("read %d of %d frames: want those in flight, not the dropped queue", frames, sent)
	}
	t.Logf("%d frames sent, %d read before the close frame", sent, frames)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed after the close handshake")
	}
}

// TestSlowConsumerIsDisconnected is a client that never reads again: the
// server does not wait for it longer than CloseTimeout, even with a long
// WriteTimeout.
func TestSlowConsumerIsDisconnected(t *testing.T) {
	var slow atomic.Int32
	var queued atomic.Int64
	c, _, _ := pair(t, Options{
		MaxQueueBytes:  256 << 10,
		WriteTimeout:   time.Minute,
		CloseTimeout:   300 * time.Millisecond,
		OnSlowConsumer: func() { slow.Add(1) },
		OnQueue:        func(d int) { queued.Add(int64(d)) },
	})
	// The client never reads: socket buffers fill, the writer blocks, the
	// queue grows to its bound and the connection is dropped.
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = c.Send(frame(uint64(i+1), 32<<10))
	}
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("never a slow consumer: %v", err)
	}
	start := time.Now()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closing a stuck peer took %v with a 300ms close timeout", d)
	}
	if slow.Load() != 1 {
		t.Fatalf("OnSlowConsumer called %d times", slow.Load())
	}
	// The queue gauge returns to zero once the writer gives up.
	deadline := time.Now().Add(10 * time.Second)
	for queued.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q := queued.Load(); q != 0 {
		t.Fatalf("queue gauge left at %d", q)
	}
}

func TestMessagesThenText(t *testing.T) {
	c, rec, cl := pair(t, Options{})
	ctx := context.Background()
	for _, m := range []string{"one", strings.Repeat("big", 100000)} {
		if err := cl.Write(ctx, websocket.MessageBinary, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if got := <-rec.msgs; string(got) != m {
			t.Fatalf("got %d bytes, want %d", len(got), len(m))
		}
	}
	if err := cl.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := <-rec.end; !errors.Is(err, ErrNotBinary) {
		t.Fatalf("end: %v", err)
	}
	c.Close(StatusNormalClosure, "text")
	if _, _, err := cl.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("read: %v", err)
	}
	<-c.Done()
}

func TestTooBigClosesWith1009(t *testing.T) {
	c, rec, cl := pair(t, Options{})
	cl.SetReadLimit(1 << 10)
	ctx := context.Background()
	go func() { _ = cl.Write(ctx, websocket.MessageBinary, make([]byte, wire.MaxMessageSize+1)) }()
	if err := <-rec.end; !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("end: %v", err)
	}
	if _, _, err := cl.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("read: %v", err)
	}
	<-c.Done()
}

func TestPeerCloseAndStop(t *testing.T) {
	c, rec, cl := pair(t, Options{})
	if err := cl.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("client close handshake: %v", err)
	}
	if err := <-rec.end; !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	<-c.Done()

	c, rec, cl = pair(t, Options{})
	c.StopReading()
	if err := <-rec.end; !errors.Is(err, ErrStopped) {
		t.Fatalf("end: %v", err)
	}
	// A message after StopReading is not delivered; the close handshake
	// still completes.
	_ = cl.Write(context.Background(), websocket.MessageBinary, []byte("late"))
	c.Close(StatusGoingAway, "")
	if _, _, err := cl.Read(context.Background()); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read: %v", err)
	}
	<-c.Done()
	if len(rec.msgs) != 0 {
		t.Fatal("message delivered after StopReading")
	}
}

func TestPingIsAnswered(t *testing.T) {
	c, _, cl := pair(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _, _, _ = cl.Read(ctx) }() // coder/websocket reads pongs in Read
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
}

func TestSendResponseMatchesProtobuf(t *testing.T) {
	c, _, cl := pair(t, Options{})
	want := []*wire.Frame{
		{Id: 7, Body: &wire.Frame_Response{Response: &wire.Response{Kind: &wire.Response_Send{Send: &wire.SendResponse{Seq: 1 << 40}}}}},
		{Body: &wire.Frame_Response{Response: &wire.Response{}}},
		{Id: 1<<64 - 1, Body: &wire.Frame_Response{Response: &wire.Response{Kind: &wire.Response_Ping{Ping: &wire.PingResponse{UnixTime: 5}}}}},
	}
	for _, f := range want {
		if err := c.SendResponse(f.GetId(), f.GetResponse()); err != nil {
			t.Fatal(err)
		}
	}
	var got []*wire.Frame
	for len(got) < len(want) {
		_, msg, err := cl.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = wire.DecodeMessage(msg, func(f *wire.Frame, err error) error {
			got = append(got, f)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %v, want %v", i, got[i], want[i])
		}
	}
	c.CloseNow()
}

// TestGoroutineReader runs the reading tests with the portable reader
// (a goroutine per connection) that TLS connections and non-Linux builds
// use.
func TestGoroutineReader(t *testing.T) {
	forceReadGoroutine = true
	defer func() { forceReadGoroutine = false }()
	t.Run("MessagesThenText", TestMessagesThenText)
	t.Run("TooBig", TestTooBigClosesWith1009)
	t.Run("PeerCloseAndStop", TestPeerCloseAndStop)
	t.Run("Ping", TestPingIsAnswered)
	t.Run("SendOrder", TestSendOrderBatchAndClose)
}
