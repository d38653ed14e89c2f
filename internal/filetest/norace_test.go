//go:build !race

package filetest

const raceEnabled = false
