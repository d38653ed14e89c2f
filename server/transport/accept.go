package transport

import (
	"fmt"
	"net/http"

	"github.com/gobwas/ws"
)

// Accept completes the WebSocket handshake of an HTTP request and returns
// the connection, which reads nothing until Start. On failure the client
// has been answered with an HTTP error.
func Accept(w http.ResponseWriter, r *http.Request, opts Options) (*Conn, error) {
	nc, brw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil, fmt.Errorf("failed to accept WebSocket: %w", err)
	}
	// Bytes the client sent after its upgrade request are already in
	// net/http's buffer; the connection takes them over and the buffer
	// (with its 4 KiB) is dropped.
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ = brw.Reader.Peek(n)
	}
	return New(nc, pending, opts), nil
}
