package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of an accepted WebSocket. net/http hands a hijacked
// connection over with its 4 KiB read and write buffers, which then live as
// long as the connection; most connections are idle, and the transport
// already batches writes, so smaller buffers cut the memory of an idle
// connection at the cost of an extra syscall for large messages.
const (
	wsReadBuffer  = 1 << 10
	wsWriteBuffer = 2 << 10
)

// smallBufferWriter wraps a ResponseWriter so that Hijack returns the
// connection with small buffers (keeping any bytes already read).
type smallBufferWriter struct {
	http.ResponseWriter
}

// Hijack implements http.Hijacker.
func (w smallBufferWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, wsReadBuffer)
	// Bytes the client sent after its upgrade request are already in
	// net/http's buffer; they must be in the new reader's buffer (callers
	// look at Buffered), not behind it.
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), conn), max(n, wsReadBuffer))
		if _, err := br.Peek(n); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}
