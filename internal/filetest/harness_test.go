package filetest

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

// binary is the parley binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "parley-filetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "parley")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/parley-im/parley/cmd/parley")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build parley:", err)
		return 1
	}
	return m.Run()
}

// server is a `parley serve` process.
type server struct {
	URL  string
	Data string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

// startServer runs `parley serve` (with extra flags) on a free loopback port with a fresh data
// folder, no proof of work and no rate limits, and stops it when the test
// ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{Data: t.TempDir(), done: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", s.Data, "--pow-bits", "0",
		"--log-format", "json", "--log-level", "debug", "--register-rate", "-1", "--addr-rate", "-1", "--lookup-rate", "-1",
		"--shutdown-timeout", "5s")
	s.cmd.Args = append(s.cmd.Args, extra...)
	s.cmd.Env = cleanEnv()
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
	t.Cleanup(func() { s.stop(t) })
	select {
	case s.URL = <-urlc:
	case <-s.done:
		t.Fatalf("parley serve exited:\n%s", s.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("parley serve did not start:\n%s", s.logs())
	}
	return s
}

// stop interrupts the server and waits for it to exit.
func (s *server) stop(t *testing.T) {
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
	if strings.Contains(s.logs(), "WARNING: DATA RACE") {
		t.Errorf("parley serve had a data race:\n%s", s.logs())
	}
}

// logs returns what the server logged so far.
func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// cleanEnv is the test process's environment without PARLEY_* variables,
// so a developer's settings do not leak into the binary under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("parley %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("parley %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0; it returns
// stdout.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("parley %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fails runs the binary, expects a non-zero exit and one line on stderr
// containing want, and returns that line.
func fails(t *testing.T, want string, args ...string) string {
	t.Helper()
	r := run(t, args...)
	if r.code == 0 {
		t.Fatalf("parley %s: exit 0, want an error\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	msg := strings.TrimSpace(r.stderr)
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("parley %s: stderr is not one line: %q", strings.Join(args, " "), msg)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("parley %s: stderr %q does not say %q", strings.Join(args, " "), msg, want)
	}
	return msg
}

// decode parses one JSON object per line of out into values of type T,
// rejecting unknown fields so the documented schema is what is printed.
func decode[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// one decodes exactly one JSON object.
func one[T any](t *testing.T, out string) T {
	t.Helper()
	vs := decode[T](t, out)
	if len(vs) != 1 {
		t.Fatalf("want one JSON line, got %d: %q", len(vs), out)
	}
	return vs[0]
}
