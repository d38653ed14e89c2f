//go:build !unix

package sqlite

// lockFolder cannot lock on this platform and reports the folder as
// locked by this store; run `parley admin` only while the server is
// stopped there.
func lockFolder(string) (func() error, bool, error) { return func() error { return nil }, true, nil }

// InUse cannot tell on this platform and reports the folder as free.
func InUse(string) (bool, error) { return false, nil }
