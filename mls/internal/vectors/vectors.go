// Package vectors loads the MLS working group's official test vectors for the
// conformance tests.
//
// The vectors are read from the directory named by PARLEY_MLS_VECTORS, or by
// default from ../shared/mls-vectors next to the repository (pinned to
// upstream commit cfd4502). They are never copied into the repository. When a
// file is missing the test is skipped, except under CI=true, where it fails.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// UpstreamCommit is the commit of github.com/mlswg/mls-implementations the
// vectors were taken from.
const UpstreamCommit = "cfd4502"

// Hex is a byte string encoded in JSON as lowercase hex.
type Hex []byte

// UnmarshalJSON decodes a hex string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("failed to decode hex: %w", err)
	}
	*h = v
	return nil
}

// Dir returns the vector directory.
func Dir() (string, error) {
	if d := os.Getenv("PARLEY_MLS_VECTORS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "mls")); err == nil {
				return filepath.Join(dir, "..", "shared", "mls-vectors"), nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root not found above %s", wd)
		}
		dir = parent
	}
}

// Load decodes the vector file name (for example "tree-math.json") into v.
// It skips the test when the file is absent, or fails it under CI=true.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MLS test vector %s missing (set PARLEY_MLS_VECTORS): %v", name, err)
		}
		t.Skipf("MLS test vector %s not found (set PARLEY_MLS_VECTORS): %v", name, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("failed to decode %s: %v", name, err)
	}
}

// Counter counts the cases of one vector file that ran and that were not
// applicable (an unsupported cipher suite), and logs the totals when the test
// ends, so that nothing is skipped in silence.
type Counter struct {
	Ran, Unsupported int
}

// Report registers a cleanup that logs the counts for file.
func (c *Counter) Report(t testing.TB, file string) {
	t.Cleanup(func() {
		t.Logf("%s: %d cases ran, %d skipped for unsupported cipher suites", file, c.Ran, c.Unsupported)
		if c.Ran == 0 && !t.Skipped() {
			t.Errorf("%s: no case ran", file)
		}
	})
}
