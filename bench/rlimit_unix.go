//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises this process's open-file limit to at least n if it
// can (raising the hard limit needs privilege; without it the soft limit
// goes up to the hard one). A spawned server inherits the limit. It
// returns the soft limit in force afterwards.
func RaiseFileLimit(n uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("failed to read the open-file limit: %w", err)
	}
	if l.Cur >= n {
		return l.Cur, nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(l.Max, n)}
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	if err == nil {
		return n, nil
	}
	err = fmt.Errorf("failed to raise the open-file hard limit from %d to %d: %w", l.Max, n, err)
	if l.Cur < l.Max {
		l.Cur = l.Max
		if serr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); serr != nil {
			return 0, fmt.Errorf("failed to raise the open-file limit: %w", serr)
		}
	}
	return l.Cur, err
}
