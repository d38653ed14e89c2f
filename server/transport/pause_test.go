package transport

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// pauser is a Handler that pauses reading after each message.
type pauser struct {
	c     chan *Conn
	pause time.Duration
	msgs  chan string
	at    chan time.Time
}

func (p *pauser) Message(msg []byte) {
	p.msgs <- string(msg)
	p.at <- time.Now()
	(<-p.c).PauseReading(p.pause)
}

func (p *pauser) End(error) {}

// rawClient upgrades a TCP connection by hand and sends extra in the same
// write as the upgrade request.
func rawClient(t *testing.T, h http.Handler, extra []byte) net.Conn {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	nc, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), extra...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc
}

func clientFrame(payload string) []byte {
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{7, 7, 7, 7}, Length: int64(len(payload))}
	var b sliceBuf
	_ = ws.WriteHeader(&b, h)
	p := []byte(payload)
	ws.Cipher(p, h.Mask, 0)
	return append(b, p...)
}

// TestPendingBytesAndPause: frames sent with the upgrade request are
// handled without further input, and after PauseReading the next message
// is handled no earlier than the pause allows — both readers.
func TestPendingBytesAndPause(t *testing.T) {
	for _, goroutine := range []bool{false, true} {
		forceReadGoroutine = goroutine
		const pause = 200 * time.Millisecond
		p := &pauser{c: make(chan *Conn, 10), pause: pause, msgs: make(chan string, 10), at: make(chan time.Time, 10)}
		conns := make(chan *Conn, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := Accept(w, r, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			for range 10 {
				p.c <- c
			}
			conns <- c
			c.Start(p)
		})
		// Two messages in the same write as the upgrade request, nothing
		// after it.
		rawClient(t, h, append(clientFrame("one"), clientFrame("two")...))
		if m := <-p.msgs; m != "one" {
			t.Fatalf("got %q", m)
		}
		first := <-p.at
		if m := <-p.msgs; m != "two" {
			t.Fatalf("got %q", m)
		}
		if gap := (<-p.at).Sub(first); gap < pause {
			t.Fatalf("second message handled %v after the first, pause is %v", gap, pause)
		}
		(<-conns).CloseNow()
	}
	forceReadGoroutine = false
}
