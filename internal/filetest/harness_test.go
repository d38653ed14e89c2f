package filetest

import (
	"os"
	"testing"

	"github.com/parley-im/parley/internal/binharness"
)

// binary is the parley binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	os.Exit(binharness.Main(m, "parley-filetest-", raceEnabled, &binary))
}

// server is a `parley serve` process.
type server struct {
	*binharness.Server
	Data string
}

// startServer runs `parley serve` (with extra flags) on a free loopback port
// with a fresh data folder, debug logs, no proof of work and no rate limits,
// and stops it when the test ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := binharness.StartServer(t, binary, nil, append([]string{"--log-level", "debug"}, extra...)...)
	return &server{Server: s, Data: s.Dir}
}

// stop interrupts the server and waits for it to exit.
func (s *server) stop(t *testing.T) { s.Stop(t) }

// logs returns what the server logged so far.
func (s *server) logs() string { return s.Logs() }

// cleanEnv is the test process's environment without PARLEY_* variables,
// so a developer's settings do not leak into the binary under test.
func cleanEnv() []string { return binharness.CleanEnv() }

// result is one finished run of the binary.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

// run runs the binary with args and waits up to a minute for it.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, nil, args...)
}

// runEnv is run with extra environment variables (NAME=value).
func runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := binharness.Run(t, binary, append(cleanEnv(), env...), "", args...)
	return result{args: r.Args, stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

// ok runs the binary and fails the test unless it exits 0; it returns
// stdout.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	return binharness.OK(t, binharness.Run(t, binary, cleanEnv(), "", args...))
}

// fails runs the binary, expects a non-zero exit and one line on stderr
// containing want, and returns that line.
func fails(t *testing.T, want string, args ...string) string {
	t.Helper()
	return binharness.Fails(t, binharness.Run(t, binary, cleanEnv(), "", args...), want)
}

// decode parses one JSON object per line of out into values of type T,
// rejecting unknown fields so the documented schema is what is printed.
func decode[T any](t *testing.T, out string) []T {
	t.Helper()
	return binharness.Decode[T](t, out)
}

// one decodes exactly one JSON object.
func one[T any](t *testing.T, out string) T {
	t.Helper()
	return binharness.One[T](t, out)
}
