package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-im/parley/wire"
)

// pair returns a server-side Conn and the client WebSocket talking to it.
func pair(t *testing.T, opts Options) (*Conn, *websocket.Conn) {
	t.Helper()
	got := make(chan *Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		c := New(ws, opts)
		got <- c
		<-c.Done()
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
	return <-got, cl
}

func frame(id uint64, size int) *wire.Frame {
	return &wire.Frame{Id: id, Body: &wire.Frame_Error{Error: &wire.Error{Message: strings.Repeat("x", size)}}}
}

func TestSendOrderBatchAndClose(t *testing.T) {
	c, cl := pair(t, Options{})
	const n = 500
	for i := 1; i <= n; i++ {
		if err := c.Send(frame(uint64(i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "bye")
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

func TestSlowConsumerIsDisconnected(t *testing.T) {
	var slow atomic.Int32
	var queued atomic.Int64
	c, _ := pair(t, Options{
		MaxQueueBytes:  256 << 10,
		WriteTimeout:   time.Minute,
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
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
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

func TestReadMessageRefusesText(t *testing.T) {
	c, cl := pair(t, Options{})
	if err := cl.Write(context.Background(), websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadMessage(context.Background()); !errors.Is(err, ErrNotBinary) {
		t.Fatalf("got %v", err)
	}
	if err := cl.Write(context.Background(), websocket.MessageBinary, []byte("bin")); err != nil {
		t.Fatal(err)
	}
	msg, err := c.ReadMessage(context.Background())
	if err != nil || string(msg) != "bin" {
		t.Fatalf("got %q, %v", msg, err)
	}
	c.CloseNow()
}
