package transport

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gobwas/ws"
)

// countHandler counts what a Conn delivers.
type countHandler struct {
	msgs, ends int
}

func (h *countHandler) Message([]byte) { h.msgs++ }
func (h *countHandler) End(error)      { h.ends++ }

// FuzzConsume feeds arbitrary bytes, split in two reads, to the frame
// reader: it must not panic, must deliver nothing larger than the limits
// allow, and must keep the unparsed rest bounded by what it was given.
func FuzzConsume(f *testing.F) {
	masked := func(op ws.OpCode, fin bool, payload []byte) []byte {
		h := ws.Header{Fin: fin, OpCode: op, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(payload))}
		var b sliceBuf
		_ = ws.WriteHeader(&b, h)
		p := append([]byte(nil), payload...)
		ws.Cipher(p, h.Mask, 0)
		return append(b, p...)
	}
	f.Add(masked(ws.OpBinary, true, []byte("hello")), 3)
	f.Add(append(masked(ws.OpBinary, false, []byte("he")), masked(ws.OpContinuation, true, []byte("llo"))...), 7)
	f.Add(masked(ws.OpPing, true, []byte("p")), 1)
	f.Add(masked(ws.OpClose, true, binary.BigEndian.AppendUint16(nil, 1000)), 2)
	f.Add(masked(ws.OpText, true, []byte("t")), 0)
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, 5)
	f.Add([]byte{0x82, 0x05, 'h', 'e', 'l', 'l', 'o'}, 2) // unmasked
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		server, client := net.Pipe()
		defer client.Close()
		go func() {
			b := make([]byte, 1024)
			for {
				if _, err := client.Read(b); err != nil {
					return
				}
			}
		}()
		c := New(server, nil, Options{})
		h := &countHandler{}
		c.read.h = h
		if split < 0 || split > len(data) {
			split = len(data)
		}
		for _, part := range [][]byte{data[:split], data[split:]} {
			c.read.buf = append(c.read.buf, part...)
			if err := c.consume(); err != nil {
				break
			}
			if len(c.read.buf) > len(data) {
				t.Fatalf("%d unparsed bytes from %d", len(c.read.buf), len(data))
			}
		}
		if h.ends != 0 {
			t.Fatal("End called from consume")
		}
		c.CloseNow()
	})
}

// sliceBuf is an io.Writer appending to itself.
type sliceBuf []byte

func (b *sliceBuf) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
