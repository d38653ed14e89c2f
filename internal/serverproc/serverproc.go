// Package serverproc runs `parley serve` as a child process for tests and
// harnesses that kill and restart it: it waits for the server to report
// its address, copies its JSON log lines to a file, and stops it with
// SIGKILL or SIGTERM.
package serverproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long Start waits for the server to serve.
const startTimeout = 30 * time.Second

// Proc is one run of the server binary.
type Proc struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:PORT
	exit chan error
}

// LoopbackArgs are the serve arguments of a test server over data: a free
// loopback port, no proof of work, no rate limits (a test is one address
// sending fast), JSON logs (Start reads the address from them), and up to
// maxConns connections from that one address.
func LoopbackArgs(data string, maxConns int) []string {
	return []string{"--listen", "127.0.0.1:0", "--data", data, "--pow-bits", "0",
		"--log-format", "json", "--log-level", "info", "--server-name", "127.0.0.1",
		"--device-rate", "-1", "--addr-rate", "-1", "--register-rate", "-1", "--lookup-rate", "-1",
		"--max-connections-per-addr", fmt.Sprint(maxConns), "--shutdown-timeout", "10s"}
}

// Start runs `bin serve args...` with the PARLEY_ variables of this process
// removed, appends its log lines to logPath, and waits until it serves.
// The serve arguments must include --log-format json.
func Start(bin, logPath string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("failed to start the server: %w", err)
	}
	p := &Proc{cmd: cmd, exit: make(chan error, 1)}
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
			_ = cmd.Process.Kill()
			<-p.exit
			return nil, fmt.Errorf("server URL %q: %w", u, err)
		}
		p.addr = pu.Host
		return p, nil
	case err := <-p.exit:
		return nil, fmt.Errorf("the server exited at start: %v\n%s", err, Tail(logPath))
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-p.exit
		return nil, fmt.Errorf("the server did not report its address in %v\n%s", startTimeout, Tail(logPath))
	}
}

// Addr is the server's host:port.
func (p *Proc) Addr() string { return p.addr }

// URL is the server's WebSocket endpoint.
func (p *Proc) URL() string { return "ws://" + p.addr + "/v1/ws" }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	<-p.exit
	return nil
}

// Stop shuts the server down with SIGTERM and reports an unclean exit or
// one that takes over 30 s (then it is killed).
func (p *Proc) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		if err != nil {
			return fmt.Errorf("server exit after SIGTERM: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exit
		return errors.New("the server did not stop within 30s of SIGTERM")
	}
}

// Tail returns the last 4,000 bytes of a log file, for failure messages.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
