//go:build !linux

package transport

import "errors"

// errWouldBlock is never returned without a poller.
var errWouldBlock = errors.New("transport: would block")

// pollReg is a poller registration; there is no poller on this platform,
// so every connection gets a read goroutine.
type pollReg struct{}

func register(*Conn) *pollReg { return nil }

func (*pollReg) read([]byte) (int, error) { return 0, errWouldBlock }
func (*pollReg) rearm() error             { return nil }
func (*pollReg) remove()                  {}
