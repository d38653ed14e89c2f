package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProxyForwardsCutsAndFollowsBackend(t *testing.T) {
	p, err := NewProxy(2*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// No backend: the connection is closed at once.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a proxy without backend succeeded")
	}
	c.Close()

	p.SetBackend(echoServer(t))
	c, err = net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, msg := range []string{"one\n", "two\n", "three\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}
	if p.Conns() != 1 {
		t.Fatalf("%d open connections, want 1", p.Conns())
	}
	if n := p.Cut(1); n != 1 {
		t.Fatalf("cut %d, want 1", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a cut connection still reads")
	}
}

// wsEcho is a WebSocket server that answers each message with the same
// message.
func wsEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestProxyDuplicatesAndReordersFrames: through a proxy that duplicates
// and swaps WebSocket frames, an echo conversation still parses as
// WebSocket, every message comes back at least once, and the proxy
// reports duplicates and swaps; with frame chaos off, every message comes
// back exactly once and in order.
func TestProxyDuplicatesAndReordersFrames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewProxy(0, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetBackend(wsEcho(t))
	echo := func(n int, pace time.Duration) []string {
		c, _, err := websocket.Dial(ctx, "ws://"+p.Addr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		got := make(chan []string, 1)
		go func() {
			var out []string
			for {
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				_, msg, err := c.Read(rctx)
				rcancel()
				if err != nil {
					got <- out
					return
				}
				out = append(out, string(msg))
			}
		}()
		for i := range n {
			if err := c.Write(ctx, websocket.MessageBinary, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pace)
		}
		return <-got
	}
	p.SetFrameChaos(0, 0)
	got := echo(50, 0)
	for i, m := range got {
		if m != fmt.Sprint(i) || len(got) != 50 {
			t.Fatalf("without frame chaos: %d messages, %q at %d", len(got), m, i)
		}
	}
	_, dup0, re0 := p.FrameStats()
	if dup0 != 0 || re0 != 0 {
		t.Fatalf("frame chaos off, yet %d duplicated and %d reordered", dup0, re0)
	}
	p.SetFrameChaos(0.3, 0.3)
	got = echo(200, 0)
	frames, dup, re := p.FrameStats()
	count := map[string]int{}
	swapped := 0
	for i, m := range got {
		count[m]++
		if i > 0 && m < got[i-1] && len(m) == len(got[i-1]) {
			swapped++
		}
	}
	for i := range 200 {
		if count[fmt.Sprint(i)] == 0 {
			t.Fatalf("message %d never came back", i)
		}
	}
	t.Logf("%d frames, %d duplicated, %d reordered; %d echoes of 200 messages, %d out of order", frames, dup, re, len(got), swapped)
	if dup == 0 || re == 0 || len(got) <= 200 || swapped == 0 {
		t.Fatalf("frame chaos had no effect: %d duplicated, %d reordered, %d echoes, %d out of order", dup, re, len(got), swapped)
	}
}

// FuzzProxyFrames feeds arbitrary bytes to the proxy's HTTP head and
// WebSocket frame readers: they never panic, never read past what they
// return, and a frame they return re-reads as itself.
func FuzzProxyFrames(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x82\x03abc"))
	f.Add([]byte("\x82\xfe\x00\x05\x01\x02\x03\x04hello"))
	f.Add([]byte("\x02\x7f\x00\x00\x00\x00\x00\x00\x00\x01x"))
	f.Add([]byte("\x81\x00\x88\x02\x03\xe8"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		head, err := readHead(r)
		if len(head) > len(data) || (err == nil && !bytes.HasPrefix(data, head)) {
			t.Fatalf("head of %d bytes from %d", len(head), len(data))
		}
		r = bufio.NewReader(bytes.NewReader(data))
		used := 0
		for {
			fr, err := readFrame(r)
			if err != nil {
				break
			}
			if !bytes.Equal(fr, data[used:used+len(fr)]) {
				t.Fatalf("frame at %d is not the input's bytes", used)
			}
			used += len(fr)
			_ = wholeDataFrame(fr)
			again, err := readFrame(bufio.NewReader(bytes.NewReader(fr)))
			if err != nil || !bytes.Equal(again, fr) {
				t.Fatalf("a frame does not re-read as itself: %v", err)
			}
		}
	})
}
