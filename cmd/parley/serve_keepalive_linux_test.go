package main

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestListenKeepAlive checks the accepted connections carry the configured
// keep-alive idle time, interval and count, and that 0 turns probes off.
func TestListenKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		idle               time.Duration
		on                 int
		keepIdle, interval int
	}{
		{time.Minute, 1, 60, 15},
		{2 * time.Second, 1, 2, 1},
		{0, 0, 0, 0},
	} {
		ln, err := listenConfig(tc.idle).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var on, idle, intvl, cnt int
		raw.Control(func(fd uintptr) {
			on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
			intvl, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
			cnt, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
		})
		if on != tc.on {
			t.Errorf("idle %v: SO_KEEPALIVE = %d, want %d", tc.idle, on, tc.on)
		}
		if tc.on == 1 && (idle != tc.keepIdle || intvl != tc.interval || cnt != 4) {
			t.Errorf("idle %v: keep-alive idle %d s, interval %d s, count %d; want %d, %d, 4", tc.idle, idle, intvl, cnt, tc.keepIdle, tc.interval)
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}
