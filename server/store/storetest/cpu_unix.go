//go:build unix

package storetest

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used, so that
// benchmarks can report CPU per message, which unlike wall time does not
// depend on what else the machine is running.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
