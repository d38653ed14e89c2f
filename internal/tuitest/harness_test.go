package tuitest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/binharness"
)

// binary is the parley binary TestMain built ("" when tmux is missing).
var binary string

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("tmux"); err != nil {
		os.Exit(m.Run()) // the tests skip themselves
	}
	os.Exit(binharness.Main(m, "parley-tuitest-", false, &binary))
}

// cleanEnv is the environment without PARLEY_* and NO_COLOR, so a
// developer's settings do not leak into the binary under test.
func cleanEnv() []string { return binharness.CleanEnv("NO_COLOR=", "TMUX") }

// startServer runs `parley serve` on a free loopback port without proof of
// work or rate limits and returns its URL; it stops with the test.
func startServer(t *testing.T) string {
	t.Helper()
	return binharness.StartServer(t, binary, cleanEnv()).URL
}

// parley runs the binary and fails the test unless it succeeds.
func parley(t *testing.T, args ...string) string {
	t.Helper()
	r := binharness.Run(t, binary, cleanEnv(), "", args...)
	if r.Code != 0 {
		t.Fatalf("parley %s: exit %d\n%s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return r.Stdout
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
