package crashtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the parley command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/parley-im/parley/cmd/parley")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is one run of `parley serve`.
type serverProc struct {
	cmd  *exec.Cmd
	url  string // ws://127.0.0.1:PORT/v1/ws
	exit chan error
}

// serverArgs: loopback on a free port, the test's data directory, no proof
// of work and no rate limits (the test is one address sending fast).
func serverArgs(data string) []string {
	return []string{"serve", "--listen", "127.0.0.1:0", "--data", data, "--pow-bits", "0",
		"--log-format", "json", "--log-level", "info",
		"--device-rate", "-1", "--addr-rate", "-1", "--register-rate", "-1", "--lookup-rate", "-1",
		"--max-connections-per-addr", "10000", "--shutdown-timeout", "10s"}
}

// startServer runs the binary and waits for it to report its address. Its
// log lines are appended to logPath.
func startServer(t *testing.T, bin, data, logPath string) *serverProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, serverArgs(data)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	p := &serverProc{cmd: cmd, exit: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			fmt.Fprintf(logf, "%s\n", line)
			var rec struct{ Msg, URL string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" {
				select {
				case addr <- rec.URL:
				default:
				}
			}
		}
		p.exit <- cmd.Wait()
	}()
	select {
	case u := <-addr:
		p.url = "ws" + strings.TrimPrefix(u, "http") + "/v1/ws"
		return p
	case err := <-p.exit:
		t.Fatalf("server exited at start: %v\n%s", err, tail(logPath))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-p.exit
		t.Fatalf("server did not report its address in 30s\n%s", tail(logPath))
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serverProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-p.exit
}

// stop shuts the server down gracefully and fails the test if it does not
// exit cleanly.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exit
		t.Error("server did not stop within 30s of SIGTERM")
	}
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// endpoint is the URL of the server currently running; it changes with
// every restart.
type endpoint struct {
	mu  sync.Mutex
	url string
}

func (e *endpoint) get() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

func (e *endpoint) set(u string) {
	e.mu.Lock()
	e.url = u
	e.mu.Unlock()
}
