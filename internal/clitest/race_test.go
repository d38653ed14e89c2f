//go:build race

package clitest

// raceEnabled builds the binary under test with the race detector when the
// tests run with it.
const raceEnabled = true
