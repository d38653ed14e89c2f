package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	addr string // 127.0.0.1:PORT
	exit chan error
}

// startServer runs the binary on a free loopback port over data, appending
// its JSON log lines to logPath, and waits until it serves. Rate limits
// are off: every client shares one address.
func startServer(t *testing.T, bin, data, logPath string) *serverProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", data, "--pow-bits", "0",
		"--log-format", "json", "--log-level", "info", "--server-name", "127.0.0.1",
		"--device-rate", "-1", "--addr-rate", "-1", "--register-rate", "-1", "--lookup-rate", "-1",
		"--max-connections-per-addr", "100000", "--shutdown-timeout", "10s")
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
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("server URL %q: %v", u, err)
		}
		p.addr = pu.Host
		return p
	case err := <-p.exit:
		t.Fatalf("server exited at start: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-p.exit
		t.Fatal("server did not report its address in 30s")
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

// stop shuts the server down gracefully.
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
