//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFolder tries to take an exclusive lock on the data folder's lock
// file. It reports whether it got it; the lock is held until release is
// called or the process ends (even by SIGKILL).
func lockFolder(path string) (release func() error, locked bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("failed to open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return func() error { return nil }, false, nil
		}
		return nil, false, fmt.Errorf("failed to lock data folder: %w", err)
	}
	return f.Close, true, nil
}
