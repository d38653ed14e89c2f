package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterConfig describes a Connections run over several server processes
// and several load-generator processes, for connection counts that one
// process cannot hold under the open-file limit (every connection is a
// file on each side).
type ClusterConfig struct {
	// Exe is the parley binary: it runs the servers (`serve`) and the
	// workers (`bench connections --worker`).
	Exe string
	// Nodes is the number of server processes; each holds Conns/Nodes
	// connections and has one worker process opening them.
	Nodes int
	// Conns is the total number of idle connections.
	Conns int
	// Postgres is a postgres:// URL; the run makes a fresh schema in that
	// database for the servers and drops it at the end.
	Postgres string
	// NATS is the nats:// URL the servers share (needed for Nodes > 1).
	NATS string
	// Settle is the wait before each memory reading [3s].
	Settle time.Duration
	// Progress receives progress lines and the servers' and workers'
	// errors (may be nil).
	Progress io.Writer
}

// fdReserve is the open files a server or worker process needs besides
// its benchmark connections (store, NATS, listener, registration).
const fdReserve = 500

// workerSource is the loopback source address of worker i: each worker
// has its own, so no source address carries more connections than one
// process can hold, well below the 28,232 ports of Linux's default
// ephemeral range (32768-60999) per source address and server port.
func workerSource(i int) net.IP { return net.IPv4(127, 0, 1, byte(1+i)) }

// RunConnectionsCluster runs the Connections scenario with cfg.Nodes
// server processes sharing PostgreSQL and NATS, as an operator would scale
// out, and one worker process per server opening that server's share of
// the connections. Memory per connection is the sum over the servers of
// RSS with the connections open minus RSS before, divided by Conns.
// Everything it starts (servers, workers, the schema) is gone when it
// returns.
func RunConnectionsCluster(ctx context.Context, cfg ClusterConfig) (*Result, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Settle == 0 {
		cfg.Settle = 3 * time.Second
	}
	limit, _ := RaiseFileLimit(uint64(cfg.Conns) + fdReserve)
	switch {
	case cfg.Nodes < 1 || cfg.Nodes > 64:
		return nil, fmt.Errorf("%w: nodes must be between 1 and 64", ErrConfig)
	case cfg.Conns < cfg.Nodes || cfg.Conns > maxCount:
		return nil, fmt.Errorf("%w: conns must be between nodes and %d", ErrConfig, maxCount)
	case cfg.Postgres == "":
		return nil, fmt.Errorf("%w: several server processes share a PostgreSQL database: give its URL", ErrConfig)
	case cfg.Nodes > 1 && cfg.NATS == "":
		return nil, fmt.Errorf("%w: several server processes need a NATS URL", ErrConfig)
	case uint64((cfg.Conns+cfg.Nodes-1)/cfg.Nodes)+fdReserve > limit:
		return nil, fmt.Errorf("%w: %d connections per process do not fit the open-file limit of %d; use more nodes",
			ErrConfig, (cfg.Conns+cfg.Nodes-1)/cfg.Nodes, limit)
	}
	dsn, drop, err := freshSchema(ctx, cfg.Postgres)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintf(cfg.Progress, "warning: %v\n", err)
		}
	}()

	share := func(i int) int { return cfg.Conns/cfg.Nodes + btoi(i < cfg.Conns%cfg.Nodes) }
	nodes := make([]Target, 0, cfg.Nodes)
	defer func() {
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				fmt.Fprintf(cfg.Progress, "warning: %v\n", err)
			}
		}
	}()
	// One after the other: the first applies the store's migrations.
	for i := range cfg.Nodes {
		n, err := SpawnWith(ctx, cfg.Exe, SpawnOptions{Conns: share(i), DB: dsn, NATS: cfg.NATS, Log: errorLines(cfg.Progress, fmt.Sprintf("node %d", i))})
		if err != nil {
			return nil, fmt.Errorf("failed to start server %d: %w", i, err)
		}
		nodes = append(nodes, n)
	}
	fmt.Fprintf(cfg.Progress, "connections: %d server processes on PostgreSQL + NATS\n", cfg.Nodes)

	r := &Result{Scenario: Connections, Target: fmt.Sprintf("%d spawned processes (PostgreSQL + NATS)", cfg.Nodes), Conns: cfg.Conns}
	m := &MemoryResult{Nodes: make([]NodeMemory, cfg.Nodes)}
	read := func(get func(*NodeMemory) *Memory) (Memory, error) {
		var sum Memory
		for i, n := range nodes {
			mm, err := n.Memory(ctx)
			if err != nil {
				return sum, err
			}
			*get(&m.Nodes[i]) = mm
			sum.RSS += mm.RSS
			sum.GoInUse += mm.GoInUse
			sum.Stack += mm.Stack
			sum.Goroutines += mm.Goroutines
			sum.Source = "sum over the server processes of " + mm.Source
		}
		return sum, nil
	}
	if m.Idle, err = read(func(n *NodeMemory) *Memory { return &n.Idle }); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "connections: idle servers: RSS %s in all\n", mib(m.Idle.RSS))

	workers := make([]*worker, 0, cfg.Nodes)
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	for i, n := range nodes {
		m.Nodes[i].Conns = share(i)
		w, err := startWorker(ctx, cfg.Exe, n.URL(), share(i), workerSource(i), errorLines(cfg.Progress, fmt.Sprintf("worker %d", i)))
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	// Every phase: tell each worker, wait for all to report.
	phase := func(cmd, want string) (int, error) {
		total := 0
		for _, w := range workers {
			if cmd != "" {
				if err := w.send(cmd); err != nil {
					return 0, err
				}
			}
		}
		for i, w := range workers {
			n, notes, err := w.await(ctx, want)
			if err != nil {
				return 0, fmt.Errorf("worker %d: %w", i, err)
			}
			if want == "alive" {
				m.Nodes[i].Open = n
			}
			for _, note := range notes {
				r.Notes = append(r.Notes, fmt.Sprintf("server %d: %s", i, note))
			}
			total += n
		}
		return total, nil
	}
	fmt.Fprintf(cfg.Progress, "connections: %d workers registering %d devices\n", len(workers), cfg.Conns)
	if _, err := phase("", "registered"); err != nil {
		return nil, err
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if m.Baseline, err = read(func(n *NodeMemory) *Memory { return &n.Baseline }); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "connections: after registration: RSS %s in all; opening %d connections\n", mib(m.Baseline.RSS), cfg.Conns)
	if _, err := phase("connect", "open"); err != nil {
		return nil, err
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if m.Loaded, err = read(func(n *NodeMemory) *Memory { return &n.Loaded }); err != nil {
		return nil, err
	}
	open, err := phase("ping", "alive")
	if err != nil {
		return nil, err
	}
	m.Open = open
	k := float64(cfg.Conns)
	m.RSSPerConn = (float64(m.Loaded.RSS) - float64(m.Baseline.RSS)) / k
	m.GoPerConn = (float64(m.Loaded.GoInUse) - float64(m.Baseline.GoInUse)) / k
	for i := range m.Nodes {
		n := &m.Nodes[i]
		n.RSSPerConn = (float64(n.Loaded.RSS) - float64(n.Baseline.RSS)) / float64(n.Conns)
	}
	r.Memory = m
	r.Notes = append(r.Notes,
		fmt.Sprintf("%d server processes and %d load-generator processes (one per server, each from its own source address 127.0.1.x) because one process may hold at most %d open files", cfg.Nodes, len(workers), limit),
		"memory per connection = (sum of server RSS with the connections open - sum before) / connections")
	return r, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NodeMemory is one server process's part of a cluster run.
type NodeMemory struct {
	// Conns is the number of connections this server was given.
	Conns int `json:"conns"`
	// Open is how many of them answered a ping after the loaded reading.
	Open int `json:"open"`
	// Idle, Baseline and Loaded are this server's readings (see
	// MemoryResult).
	Idle     Memory `json:"idle"`
	Baseline Memory `json:"baseline"`
	Loaded   Memory `json:"loaded"`
	// RSSPerConn is (Loaded.RSS - Baseline.RSS) / Conns, in bytes.
	RSSPerConn float64 `json:"rss_bytes_per_conn"`
}

// freshSchema makes a schema with a random name in the database at base
// and returns a URL whose connections use it, and a function that drops
// it.
func freshSchema(ctx context.Context, base string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%w: the PostgreSQL URL must be postgres://...", ErrConfig)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", nil, ErrNotLoopback
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	schema := "parley_bench_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("failed to create a schema for the run: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("failed to drop the run's schema %s: %w", schema, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// errorLines passes on the lines of a child process's log that report a
// warning or an error, prefixed with who said it.
func errorLines(w io.Writer, who string) io.Writer { return &lineFilter{w: w, who: who} }

type lineFilter struct {
	mu  sync.Mutex
	w   io.Writer
	who string
	buf []byte
}

func (f *lineFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := strings.IndexByte(string(f.buf), '\n')
		if i < 0 {
			break
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, "worker:") {
			fmt.Fprintf(f.w, "%s: %s\n", f.who, line)
		}
	}
	if len(f.buf) > 1<<20 { // a line without an end: drop it
		f.buf = f.buf[:0]
	}
	return len(p), nil
}

// worker is a `parley bench connections --worker` child process. It
// speaks JSON lines: the coordinator writes a command per line
// ("connect", "ping", "exit"); the worker answers each phase with
// {"phase": ..., "n": ...} or {"error": ...}.
type worker struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *json.Decoder
	exit chan error
	once sync.Once
}

// workerStatus is one line a worker writes.
type workerStatus struct {
	Phase string   `json:"phase,omitempty"`
	N     int      `json:"n,omitempty"`
	Error string   `json:"error,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

func startWorker(ctx context.Context, exe, serverURL string, conns int, source net.IP, logw io.Writer) (*worker, error) {
	cmd := exec.Command(exe, "bench", "connections", "--worker", "--server", serverURL,
		"--conns", strconv.Itoa(conns), "--source", source.String())
	cmd.Env = cleanEnv(os.Environ())
	cmd.Stderr = logw
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("failed to start a worker: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("failed to start a worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start a worker: %w", err)
	}
	w := &worker{cmd: cmd, in: in, out: json.NewDecoder(out), exit: make(chan error, 1)}
	go func() { w.exit <- cmd.Wait() }()
	return w, nil
}

func (w *worker) send(cmd string) error {
	if _, err := io.WriteString(w.in, cmd+"\n"); err != nil {
		return fmt.Errorf("failed to instruct a worker: %w", err)
	}
	return nil
}

// await reads the worker's next status, which must be phase, and
// returns its count and notes.
func (w *worker) await(ctx context.Context, phase string) (int, []string, error) {
	got := make(chan workerStatus, 1)
	errc := make(chan error, 1)
	go func() {
		var s workerStatus
		if err := w.out.Decode(&s); err != nil {
			errc <- fmt.Errorf("worker ended before %q: %w", phase, err)
			return
		}
		got <- s
	}()
	select {
	case s := <-got:
		if s.Error != "" {
			return 0, nil, errors.New(s.Error)
		}
		if s.Phase != phase {
			return 0, nil, fmt.Errorf("worker reported %q, want %q", s.Phase, phase)
		}
		return s.N, s.Notes, nil
	case err := <-errc:
		return 0, nil, err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

// stop asks the worker to exit and kills it if it does not within 30 s.
func (w *worker) stop() {
	w.once.Do(func() {
		_ = w.send("exit")
		_ = w.in.Close()
		select {
		case <-w.exit:
		case <-time.After(30 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.exit
		}
	})
}
