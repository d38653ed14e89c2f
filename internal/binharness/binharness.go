// Package binharness runs the real parley binary for end-to-end tests: it
// builds the binary once, starts `parley serve` on a free loopback port with
// a fresh data folder, and runs CLI commands with a clean environment.
package binharness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Package is the import path of the parley command.
const Package = "github.com/parley-im/parley/cmd/parley"

// Build builds the parley binary into dir (with the race detector when race
// is set) and returns its path. The go tool's output goes to stderr.
func Build(dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "parley")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, Package)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("failed to build parley: %w", err)
	}
	return bin, nil
}

// Main is the body of a TestMain: it builds the binary into a fresh
// temporary folder named after prefix, stores its path in *bin, runs the
// tests and removes the folder. It returns the exit code for os.Exit.
func Main(m *testing.M, prefix string, race bool, bin *string) int {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin, err = Build(dir, race)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// CleanEnv is the test process's environment without PARLEY_* variables and
// without any variable starting with one of drop, so a developer's settings
// do not leak into the binary under test.
func CleanEnv(drop ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PARLEY_") {
			continue
		}
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return env
}

// Server is a `parley serve` process.
type Server struct {
	// URL is the address the server announced it serves on.
	URL string
	// Dir is the server's data folder.
	Dir  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

// StartServer runs bin as `parley serve` on a free loopback port with a
// fresh data folder, JSON logs, no proof of work and no rate limits, plus the
// extra flags given, and stops it when the test ends. env is the server's
// environment (CleanEnv() when nil).
func StartServer(t testing.TB, bin string, env []string, extra ...string) *Server {
	t.Helper()
	if env == nil {
		env = CleanEnv()
	}
	s := &Server{Dir: t.TempDir(), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", s.Dir, "--pow-bits", "0",
		"--log-format", "json", "--register-rate", "-1", "--addr-rate", "-1", "--lookup-rate", "-1",
		"--shutdown-timeout", "5s")
	s.cmd.Args = append(s.cmd.Args, extra...)
	s.cmd.Env = env
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.log.Write(line)
			s.log.WriteByte('\n')
			s.mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" {
				select {
				case urlc <- rec.URL:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() { s.Stop(t) })
	select {
	case s.URL = <-urlc:
	case <-s.done:
		t.Fatalf("parley serve exited:\n%s", s.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("parley serve did not start:\n%s", s.Logs())
	}
	return s
}

// Pid returns the server process's id (for reading its resource use from
// /proc).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop interrupts the server and waits for it to exit (killing it after 15
// seconds); it fails the test if the server reported a data race. Stopping a
// stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if err := s.cmd.Wait(); err != nil {
		t.Logf("parley serve: %v", err)
	}
	if strings.Contains(s.Logs(), "WARNING: DATA RACE") {
		t.Errorf("parley serve had a data race:\n%s", s.Logs())
	}
}

// Logs returns what the server logged so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Result is one finished run of the binary.
type Result struct {
	// Args are the command-line arguments.
	Args []string
	// Stdout and Stderr are what the run printed.
	Stdout, Stderr string
	// Code is the exit code.
	Code int
}

// Run runs bin with args, the environment env and stdin as its input (none
// when empty), waits up to a minute for it and returns what it printed and
// its exit code. It fails the test if the binary cannot run at all.
func Run(t testing.TB, bin string, env []string, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("parley %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("parley %s: %v", strings.Join(args, " "), err)
	}
	return r
}
