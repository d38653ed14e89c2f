//go:build !linux

package framing

import "testing"

// cpuTimer reports nothing where per-thread CPU time is not available.
func cpuTimer(*testing.B) func() { return func() {} }
