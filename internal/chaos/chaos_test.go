package chaos

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// fromEnv applies the PARLEY_CHAOS_* overrides (PARLEY_CHAOS_ACCOUNTS
// counts the stable accounts, four fewer than the devices).
func fromEnv(t *testing.T, c Config) Config {
	accounts := c.Devices - 4
	for name, dst := range map[string]*int{"PARLEY_CHAOS_ACCOUNTS": &accounts, "PARLEY_CHAOS_MESSAGES": &c.Messages, "PARLEY_CHAOS_KILLS": &c.Kills} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a number", name, v)
			}
			*dst = n
		}
	}
	c.Devices = max(accounts+4, MinDevices)
	if v := os.Getenv("PARLEY_CHAOS_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PARLEY_CHAOS_SECONDS=%q: want a number", v)
		}
		c.Traffic = time.Duration(n) * time.Second
	}
	return c
}

// TestChaosBounded is the CI run: 10 devices, 500 messages, 3 server
// kills, connections cut throughout, frames delayed, duplicated and
// reordered, members joining and leaving, a device linked and another
// revoked during traffic.
func TestChaosBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run is not short")
	}
	run(t, fromEnv(t, Config{Devices: 10, Messages: 500, Kills: 3, Traffic: 12 * time.Second}))
}

// TestChaosLong is the long run: 50 devices, 10,000 messages, 20 server
// kills. It runs only with PARLEY_CHAOS=long.
func TestChaosLong(t *testing.T) {
	if os.Getenv("PARLEY_CHAOS") != "long" {
		t.Skip("set PARLEY_CHAOS=long for the long chaos run")
	}
	run(t, fromEnv(t, Config{Devices: 50, Messages: 10000, Kills: 20, Traffic: 5 * time.Minute}))
}

func run(t *testing.T, cfg Config) {
	cfg.Binary = parleyBinary(t)
	cfg.Dir = t.TempDir()
	cfg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	rep, err := Run(ctx, cfg)
	t.Log(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("chaos run failed: %+v", rep)
	}
	if rep.Kills != cfg.Kills || rep.Cuts == 0 || rep.DuplicatedFrames == 0 || rep.ReorderedFrames == 0 {
		t.Errorf("the chaos did not happen as configured: %d of %d kills, %d cuts, %d duplicated and %d reordered frames",
			rep.Kills, cfg.Kills, rep.Cuts, rep.DuplicatedFrames, rep.ReorderedFrames)
	}
}
