package chaos

import "github.com/parley-im/parley/internal/serverproc"

// startServer runs the binary on a free loopback port over data, appending
// its JSON log lines to logPath, and waits until it serves. Rate limits
// are off: every client shares one address.
func startServer(bin, data, logPath string) (*serverproc.Proc, error) {
	return serverproc.Start(bin, logPath, serverproc.LoopbackArgs(data, 100000)...)
}
