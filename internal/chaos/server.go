package chaos

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

// serverProc is one run of `parley serve`.
type serverProc struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:PORT
	exit chan error
}

// startServer runs the binary on a free loopback port over data, appending
// its JSON log lines to logPath, and waits until it serves. Rate limits
// are off: every client shares one address.
func startServer(bin, data, logPath string) (*serverProc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
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
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("failed to start the server: %w", err)
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
			_ = cmd.Process.Kill()
			<-p.exit
			return nil, fmt.Errorf("server URL %q: %w", u, err)
		}
		p.addr = pu.Host
		return p, nil
	case err := <-p.exit:
		return nil, fmt.Errorf("the server exited at start: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-p.exit
		return nil, errors.New("the server did not report its address in 30s")
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serverProc) kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	<-p.exit
	return nil
}

// stop shuts the server down gracefully.
func (p *serverProc) stop() error {
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
