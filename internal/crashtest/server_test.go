package crashtest

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parley-im/parley/internal/serverproc"
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

// startServer runs the binary over data on a free loopback port and waits
// for it to serve. Its log lines are appended to logPath.
func startServer(t *testing.T, bin, data, logPath string) *serverproc.Proc {
	t.Helper()
	p, err := serverproc.Start(bin, logPath, serverproc.LoopbackArgs(data, 10000)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
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
