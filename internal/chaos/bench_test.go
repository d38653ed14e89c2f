package chaos

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/parley-im/parley/internal/binharness"
)

// The parley binary is built once, on first use (so that fuzz workers of
// this package do not build it), into binDir, removed after the tests.
var (
	buildOnce sync.Once
	binDir    string
	built     string
	buildErr  error
)

// parleyBinary returns the parley binary, building it the first time.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "parley-chaos-"); buildErr == nil {
			built, buildErr = binharness.Build(binDir, false)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestBenchChaosBinary: `parley bench chaos` runs the harness from the
// binary: a tiny run with a server kill, cuts and frame chaos finishes in
// seconds, exits 0 and prints a JSON report that accounts for everything;
// bad sizes are usage errors (exit 2).
func TestBenchChaosBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run is not short")
	}
	parleyBin := parleyBinary(t)
	env := binharness.CleanEnv()
	r := binharness.Run(t, parleyBin, env, "", "bench", "chaos", "--devices", "8", "--messages", "40", "--kills", "1",
		"--duration", "3s", "--duplicate", "0.1", "--reorder", "0.1", "--seed", "42", "--json")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	var rep Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("report %q: %v", r.Stdout, err)
	}
	if rep.Seed != 42 || rep.Devices != 8 || rep.Messages != 40 || rep.Final != 6 || rep.Kills != 1 {
		t.Errorf("the report does not describe the run asked for: %+v", rep)
	}
	if !rep.OK() || rep.Frames == 0 || rep.TotalSeconds <= 0 || rep.ServerCPUSeconds <= 0 {
		t.Errorf("report: %+v", rep)
	}
	if !strings.Contains(r.Stderr, "server kill 1 of 1") {
		t.Errorf("no progress on stderr: %s", r.Stderr)
	}
	bad := binharness.Run(t, parleyBin, env, "", "bench", "chaos", "--devices", "3")
	if bad.Code != 2 || !strings.Contains(bad.Stderr, "--devices must be at least 8") {
		t.Errorf("--devices 3: exit %d, %s", bad.Code, bad.Stderr)
	}
}
