package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
)

// ErrNotLoopback is returned for a server address outside the loopback
// network: the load generator only talks to this machine.
var ErrNotLoopback = errors.New("bench: the server must be on a loopback address (127.0.0.0/8 or ::1)")

// Target is the server under test.
type Target interface {
	// URL is the server's WebSocket URL (ws://127.0.0.1:PORT/v1/ws).
	URL() string
	// Kind says how the server runs: "in-process", "spawned" or "external".
	Kind() string
	// Memory reports the server's memory use now.
	Memory(ctx context.Context) (Memory, error)
	// CPU reports the CPU time the server has used so far (user+system).
	CPU(ctx context.Context) (time.Duration, error)
	// Close stops a server the target started.
	Close() error
}

// Memory is a reading of the server's memory.
type Memory struct {
	// RSS is the resident set size in bytes (0 if unknown).
	RSS uint64 `json:"rss_bytes"`
	// GoInUse is the Go heap in use plus goroutine stacks, in bytes (0 if
	// unknown).
	GoInUse uint64 `json:"go_heap_stack_bytes"`
	// Stack is the part of GoInUse that is goroutine stacks.
	Stack uint64 `json:"go_stack_bytes"`
	// Goroutines is the number of goroutines (0 if unknown).
	Goroutines uint64 `json:"goroutines"`
	// Source says where the numbers come from.
	Source string `json:"source"`
}

// Limits that a server started by the load generator runs with: rate
// limits off (the load generator is one address sending as fast as it
// can), connection limits above what the scenario opens.
func benchLimits(conns int) server.Limits {
	n := max(conns+1000, 100000)
	return server.Limits{
		DeviceRate: -1, AddrRate: -1, RegisterRate: -1, LookupRate: -1,
		MaxConnections: n, MaxConnectionsPerAddr: n,
	}
}

// inProcess is a server.Server in this process.
type inProcess struct {
	srv  *server.Server
	st   store.Store
	dir  string
	url  string
	done chan error
}

// StartInProcess starts a real server in this process on 127.0.0.1:0 with
// a SQLite store in a temporary directory, sized for conns connections and
// without rate limits. Its memory readings include this whole process.
func StartInProcess(ctx context.Context, powBits, conns int) (Target, error) {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, fmt.Errorf("failed to make a data directory: %w", err)
	}
	st, err := open.Open(ctx, dir, store.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to open the store: %w", err)
	}
	srv, err := server.New(server.Config{
		Store: st, ServerName: "127.0.0.1", PowBits: powBits, Limits: benchLimits(conns),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		_ = st.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to create the server: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = st.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	t := &inProcess{srv: srv, st: st, dir: dir, url: "ws://" + l.Addr().String() + "/v1/ws", done: make(chan error, 1)}
	go func() { t.done <- srv.Serve(l) }()
	return t, nil
}

func (t *inProcess) URL() string  { return t.url }
func (t *inProcess) Kind() string { return "in-process" }

func (t *inProcess) Memory(context.Context) (Memory, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procRSS(os.Getpid())
	return Memory{
		RSS: rss, GoInUse: ms.HeapInuse + ms.StackInuse, Stack: ms.StackInuse, Goroutines: uint64(runtime.NumGoroutine()),
		Source: "runtime.MemStats of the whole process, after a GC (includes the load generator's own clients)",
	}, nil
}

// CPU is the whole process's CPU time, the load generator's included.
func (t *inProcess) CPU(context.Context) (time.Duration, error) { return selfCPU() }

func (t *inProcess) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := t.srv.Shutdown(ctx)
	err = errors.Join(err, <-t.done, t.st.Close(), os.RemoveAll(t.dir))
	if err != nil {
		return fmt.Errorf("failed to stop the in-process server: %w", err)
	}
	return nil
}

// spawned is `parley serve` run as a child process.
type spawned struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	http string
	exit chan error
}

// Spawn runs `exe serve` as a child process on 127.0.0.1:0 with a
// temporary data directory, without rate limits and sized for conns
// connections. Its memory is read from /proc/PID/status and /metrics. The
// server's log goes to logw (may be nil).
func Spawn(ctx context.Context, exe string, powBits, conns int, logw io.Writer) (Target, error) {
	return SpawnWith(ctx, exe, SpawnOptions{PowBits: powBits, Conns: conns, Log: logw})
}

// SpawnOptions configure a spawned server.
type SpawnOptions struct {
	// PowBits is the registration proof-of-work difficulty.
	PowBits int
	// Conns sizes the connection limits.
	Conns int
	// DB is a postgres:// URL for --db (default: SQLite in the temporary
	// data directory).
	DB string
	// NATS is a nats:// URL for --nats (default: none).
	NATS string
	// Log receives the server's log lines (may be nil).
	Log io.Writer
}

// SpawnWith is Spawn with a choice of store and bus, for several server
// processes sharing PostgreSQL and NATS.
func SpawnWith(ctx context.Context, exe string, o SpawnOptions) (Target, error) {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, fmt.Errorf("failed to make a data directory: %w", err)
	}
	powBits, logw := o.PowBits, o.Log
	l := benchLimits(o.Conns)
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data", dir,
		"--pow-bits", strconv.Itoa(powBits), "--log-format", "json", "--log-level", "info",
		"--device-rate", "-1", "--addr-rate", "-1", "--register-rate", "-1", "--lookup-rate", "-1",
		"--max-connections", strconv.Itoa(l.MaxConnections),
		"--max-connections-per-addr", strconv.Itoa(l.MaxConnectionsPerAddr)}
	if o.DB != "" {
		args = append(args, "--db", o.DB)
	}
	if o.NATS != "" {
		args = append(args, "--nats", o.NATS)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = cleanEnv(os.Environ())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to spawn the server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to spawn the server: %w", err)
	}
	t := &spawned{cmd: cmd, dir: dir, exit: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" {
				select {
				case addr <- rec.URL:
				default:
				}
			}
			if logw != nil {
				_, _ = fmt.Fprintf(logw, "server: %s\n", line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		t.exit <- cmd.Wait()
	}()
	select {
	case u := <-addr:
		t.http = u
		t.url = "ws" + strings.TrimPrefix(u, "http") + "/v1/ws"
		return t, nil
	case err := <-t.exit:
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to start the server: it exited (%v)", err)
	case <-ctx.Done():
	case <-time.After(60 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-t.exit
	_ = os.RemoveAll(dir)
	return nil, errors.New("failed to start the server: it did not report its address in time")
}

// cleanEnv drops PARLEY_* variables so they cannot change the spawned
// server's configuration behind the flags.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PARLEY_") {
			out = append(out, kv)
		}
	}
	return out
}

func (t *spawned) URL() string  { return t.url }
func (t *spawned) Kind() string { return "spawned" }

func (t *spawned) Memory(ctx context.Context) (Memory, error) {
	rss, err := procRSS(t.cmd.Process.Pid)
	if err != nil {
		return Memory{}, err
	}
	m := Memory{RSS: rss, Source: "VmRSS of the server process (/proc/PID/status); Go heap+stacks from /metrics"}
	if mm, err := scrapeMemory(ctx, t.http); err == nil {
		m.GoInUse, m.Stack, m.Goroutines = mm.GoInUse, mm.Stack, mm.Goroutines
	}
	return m, nil
}

func (t *spawned) CPU(context.Context) (time.Duration, error) { return procCPU(t.cmd.Process.Pid) }

func (t *spawned) Close() error {
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exit:
	case <-time.After(30 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.exit
	}
	return os.RemoveAll(t.dir)
}

// external is a server somebody else runs on this machine.
type external struct{ url, http string }

// External targets a running server on a loopback IP address (a host
// name is refused, since it could resolve elsewhere). u may be its
// base URL (http://127.0.0.1:8080) or WebSocket URL (ws://.../v1/ws).
func External(u string) (Target, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the server URL: %w", err)
	}
	var scheme string
	switch p.Scheme {
	case "http", "ws":
		scheme = "http"
	case "https", "wss":
		scheme = "https"
	default:
		return nil, fmt.Errorf("bench: server URL must be http://, https://, ws:// or wss://, not %q", u)
	}
	// An IP address, not a name: a name could resolve anywhere.
	ip := net.ParseIP(p.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return nil, ErrNotLoopback
	}
	base := scheme + "://" + p.Host
	return &external{url: "ws" + strings.TrimPrefix(base, "http") + "/v1/ws", http: base}, nil
}

func (t *external) URL() string  { return t.url }
func (t *external) Kind() string { return "external" }
func (t *external) Close() error { return nil }

func (t *external) CPU(ctx context.Context) (time.Duration, error) {
	v, err := scrape(ctx, t.http, "process_cpu_seconds_total")
	if err != nil {
		return 0, err
	}
	return time.Duration(v[0] * float64(time.Second)), nil
}

func (t *external) Memory(ctx context.Context) (Memory, error) {
	return scrapeMemory(ctx, t.http)
}

// procCPU reads a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read the server's CPU time: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields, in clock ticks (USER_HZ, 100 on Linux).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, errors.New("failed to read the server's CPU time: malformed /proc stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("failed to read the server's CPU time: malformed /proc stat")
	}
	return time.Duration(u+st) * (time.Second / 100), nil
}

// procRSS reads VmRSS of a process from /proc/PID/status.
func procRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read the server's memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, errors.New("failed to read the server's memory: no VmRSS line")
}

// scrapeMemory reads the process and Go memory gauges from a server's
// Prometheus endpoint.
func scrapeMemory(ctx context.Context, base string) (Memory, error) {
	v, err := scrape(ctx, base, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
	if err != nil {
		return Memory{}, err
	}
	return Memory{
		RSS:     uint64(v[0]),
		GoInUse: uint64(v[1] + v[2]), Stack: uint64(v[2]), Goroutines: uint64(v[3]),
		Source: "the server's /metrics (process_resident_memory_bytes; go heap+stack in use)",
	}, nil
}

// scrape reads unlabelled samples from a server's Prometheus endpoint.
func scrape(ctx context.Context, base string, names ...string) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to read metrics: %s", resp.Status)
	}
	return parseGauges(io.LimitReader(resp.Body, 16<<20), names...)
}

// parseGauges finds unlabelled samples in Prometheus text format.
func parseGauges(r io.Reader, names ...string) ([]float64, error) {
	out := make([]float64, len(names))
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		for i, n := range names {
			if f[0] == n {
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					return nil, fmt.Errorf("failed to parse metric %s: %w", n, err)
				}
				out[i] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read metrics: %w", err)
	}
	return out, nil
}
