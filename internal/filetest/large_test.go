package filetest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLargeTransfer sends a large file with `parley file send` and fetches
// it with `parley file get` through a real `parley serve` on loopback, and
// reports each direction's rate, the CPU time of client and server and
// their peak memory. It runs with PARLEY_TEST_LARGE=1 (1 GiB; set
// PARLEY_TEST_LARGE_MIB for another size, such as 4096) and fails if a
// process's peak RSS exceeds 64 MiB. Rates depend on the machine's load;
// the CPU times are the steadier figure.
//
//	PARLEY_TEST_LARGE=1 go test ./internal/filetest -run LargeTransfer -v -timeout 30m
func TestLargeTransfer(t *testing.T) {
	if os.Getenv("PARLEY_TEST_LARGE") != "1" {
		t.Skip("set PARLEY_TEST_LARGE=1 to send a 1 GiB file through the binaries")
	}
	if raceEnabled {
		t.Skip("the race detector makes the rates meaningless")
	}
	mib := int64(1024)
	if s := os.Getenv("PARLEY_TEST_LARGE_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("PARLEY_TEST_LARGE_MIB=%q", s)
		}
		mib = n
	}
	size := mib << 20
	srv := startServer(t, "--max-file-size", "5GiB", "--blob-quota", "-1")
	alice := newProfile(t, srv, "alice")
	bob := newProfile(t, srv, "bob")
	path := filepath.Join(t.TempDir(), "large.bin")
	writeRandom(t, path, size)

	send := measure(t, srv.Pid(), alice.args("file", "send", "bob@127.0.0.1", path, "--json"))
	m := bob.recvFile()
	out := filepath.Join(t.TempDir(), "got.bin")
	get := measure(t, srv.Pid(), bob.args("file", "get", m.ID, "--out", out, "--json"))
	if fileHash(t, out) != fileHash(t, path) {
		t.Fatal("the downloaded file differs from the sent one")
	}
	serverPeak := procStatusKB(t, srv.Pid(), "VmHWM:")
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("%d MiB, load average %s", mib, strings.Join(strings.Fields(string(load))[:3], " "))
	for _, r := range []struct {
		name string
		m    measurement
	}{{"file send", send}, {"file get", get}} {
		t.Logf("%s: %.0f MB/s (%v); client CPU %v, peak RSS %d MiB; server CPU %v",
			r.name, float64(size)/r.m.wall.Seconds()/1e6, r.m.wall.Round(time.Millisecond),
			r.m.cpu.Round(time.Millisecond), r.m.peakKB>>10, r.m.serverCPU.Round(time.Millisecond))
		if r.m.peakKB > 64<<10 {
			t.Errorf("%s: client peak RSS %d MiB, over 64 MiB", r.name, r.m.peakKB>>10)
		}
	}
	t.Logf("server peak RSS over both: %d MiB", serverPeak>>10)
	if serverPeak > 64<<10 {
		t.Errorf("server peak RSS %d MiB, over 64 MiB", serverPeak>>10)
	}
}

// writeRandom writes size incompressible bytes to path.
func writeRandom(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		_, _ = rng.Read(buf)
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

type measurement struct {
	wall, cpu, serverCPU time.Duration
	peakKB               int64
}

// measure runs the binary with args and returns its wall and CPU time,
// its peak RSS and the CPU time the server process used meanwhile.
func measure(t *testing.T, serverPid int, args []string) measurement {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	s0 := procCPU(t, serverPid)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measurement{
		wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		serverCPU: procCPU(t, serverPid) - s0, peakKB: ru.Maxrss,
	}
}

// procCPU returns a process's user plus system time from /proc (in clock
// ticks of 10 ms, as Linux reports them to user space).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procStatusKB returns a "kB" field of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
