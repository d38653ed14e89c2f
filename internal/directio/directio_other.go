//go:build !linux

package directio

import (
	"os"
	"unsafe"
)

func openFile(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	return f, false, err
}

func datasync(f *os.File) error { return f.Sync() }

func alignOffset(b []byte) int {
	return int(-uintptr(unsafe.Pointer(&b[0])) & (align - 1))
}

func openRead(path string) (*os.File, bool, error) {
	f, err := os.Open(path)
	return f, false, err
}
