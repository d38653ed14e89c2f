//go:build !unix

package bench

// RaiseFileLimit does nothing where there are no rlimits; it reports n.
func RaiseFileLimit(n uint64) (uint64, error) { return n, nil }
