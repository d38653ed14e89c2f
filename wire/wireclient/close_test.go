package wireclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// TestCloseWithUnreadEvents: a caller that stops reading Events and closes
// the connection is not left waiting for the reader, which is blocked on
// the full Events channel. (A flood test hung for ten minutes in CloseNow
// this way after the test had failed and stopped reading.)
func TestCloseWithUnreadEvents(t *testing.T) {
	for _, name := range []string{"CloseNow", "Close"} {
		t.Run(name, func(t *testing.T) {
			sent := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer ws.CloseNow()
				ev := &wire.Frame{Body: &wire.Frame_Event{Event: &wire.Event{Kind: &wire.Event_Wake{Wake: &wire.Wake{}}}}}
				msg, err := wire.EncodeMessage(ev)
				if err != nil {
					t.Error(err)
					return
				}
				for range 8 { // more than the client's buffer of 1
					if err := ws.Write(r.Context(), websocket.MessageBinary, msg); err != nil {
						return
					}
				}
				close(sent)
				// Keep the connection open until the client goes.
				_, _, _ = ws.Read(r.Context())
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := wireclient.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &wireclient.Options{EventBuffer: 1})
			if err != nil {
				t.Fatal(err)
			}
			<-sent
			// Let the reader fill the buffer and block on the next event.
			deadline := time.Now().Add(5 * time.Second)
			for len(c.Events()) < 1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			closed := make(chan struct{})
			go func() {
				if name == "Close" {
					_ = c.Close()
				} else {
					c.CloseNow()
				}
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(8 * time.Second):
				t.Fatalf("%s did not return with events unread", name)
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("Done is not closed after close returned")
			}
		})
	}
}
