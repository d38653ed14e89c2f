//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// InUse reports whether a store holds the data folder dir open now (a
// running `parley serve`, or a `parley admin` command): whether its lock
// file exists and is locked. It takes and releases the lock to find out.
func InUse(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to open lock file: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("failed to lock data folder: %w", err)
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
