package directio

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// openFile opens path for writing with O_DIRECT, falling back to ordinary
// writes where the file system refuses it.
func openFile(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o600)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	return f, false, err
}

func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

func alignOffset(b []byte) int {
	return int(-uintptr(unsafe.Pointer(&b[0])) & (align - 1))
}

// openRead opens path for reading with O_DIRECT where the file system
// allows it.
func openRead(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, false, err
	}
	f, err = os.Open(path)
	return f, false, err
}
