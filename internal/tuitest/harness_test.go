package tuitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

// binary is the parley binary TestMain built ("" when tmux is missing).
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	if _, err := exec.LookPath("tmux"); err != nil {
		return m.Run() // the tests skip themselves
	}
	dir, err := os.MkdirTemp("", "parley-tuitest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", binary, "github.com/parley-im/parley/cmd/parley")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build parley:", err)
		return 1
	}
	return m.Run()
}

// cleanEnv is the environment without PARLEY_* and NO_COLOR, so a
// developer's settings do not leak into the binary under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") && !strings.HasPrefix(kv, "NO_COLOR=") && !strings.HasPrefix(kv, "TMUX") {
			env = append(env, kv)
		}
	}
	return env
}

// startServer runs `parley serve` on a free loopback port without proof of
// work or rate limits and returns its URL; it stops with the test.
func startServer(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--pow-bits", "0",
		"--log-format", "json", "--register-rate", "-1", "--addr-rate", "-1", "--lookup-rate", "-1", "--shutdown-timeout", "5s")
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	urlc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logs.Write(sc.Bytes())
			logs.WriteByte('\n')
			mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				select {
				case urlc <- rec.URL:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
	})
	select {
	case u := <-urlc:
		return u
	case <-done:
	case <-time.After(30 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("parley serve did not start:\n%s", logs.String())
	return ""
}

// parley runs the binary and fails the test unless it succeeds.
func parley(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// tmux is one private tmux server (its own socket), killed with the test.
type tmux struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmux {
	var b [6]byte
	_, _ = rand.Read(b[:])
	x := &tmux{t: t, socket: "parley-tuitest-" + hex.EncodeToString(b[:])}
	t.Cleanup(func() { _, _ = x.run("kill-server") })
	return x
}

func (x *tmux) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (x *tmux) must(args ...string) string {
	x.t.Helper()
	out, err := x.run(args...)
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// chat starts `parley chat` for a profile in a new session of the size
// given. When parley exits, the pane says so and stays.
func (x *tmux) chat(name, profile string, w, h int, args ...string) {
	x.t.Helper()
	sh := fmt.Sprintf("%s chat --profile %s %s; echo PARLEY-EXITED $?; sleep 600", binary, profile, strings.Join(args, " "))
	x.must("new-session", "-d", "-s", name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh", "-c", sh)
}

// keys types literal text into a session.
func (x *tmux) text(session, text string) {
	x.t.Helper()
	x.must("send-keys", "-t", session, "-l", text)
}

// key sends named keys (Enter, Escape, Up, C-j, ...).
func (x *tmux) key(session string, keys ...string) {
	x.t.Helper()
	x.must(append([]string{"send-keys", "-t", session}, keys...)...)
}

// capture is the session's screen as text.
func (x *tmux) capture(session string) string {
	x.t.Helper()
	return x.must("capture-pane", "-p", "-t", session)
}

// waitDeadline bounds every wait for the screen.
const waitDeadline = 45 * time.Second

// waitFor polls the screen until it contains every one of want, and
// returns it; it fails the test at the deadline.
func (x *tmux) waitFor(session string, want ...string) string {
	x.t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		screen := x.capture(session)
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if strings.Contains(screen, "PARLEY-EXITED") || time.Now().After(deadline) {
			x.t.Fatalf("%s: the screen never showed %q:\n%s", session, missing, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
