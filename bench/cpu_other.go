//go:build !unix

package bench

import (
	"errors"
	"time"
)

// selfCPU is not available here.
func selfCPU() (time.Duration, error) {
	return 0, errors.New("bench: CPU time is not available on this system")
}
