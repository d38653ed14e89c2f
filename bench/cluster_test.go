package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestWorkerProtocol runs a load-generator worker against an in-process
// server: it registers, connects and pings on command and reports each
// phase as a JSON line.
func TestWorkerProtocol(t *testing.T) {
	tg := startInProcess(t)
	var out bytes.Buffer
	in := strings.NewReader("connect\nping\nexit\n")
	err := RunConnectionsWorker(context.Background(), WorkerConfig{URL: tg.URL(), Conns: 30, Source: net.IPv4(127, 0, 1, 200)}, in, &out)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	for _, want := range []workerStatus{{Phase: "registered", N: 30}, {Phase: "open", N: 30}, {Phase: "alive", N: 30}} {
		var got workerStatus
		if err := dec.Decode(&got); err != nil || got.Phase != want.Phase || got.N != want.N || got.Error != "" || len(got.Notes) != 0 {
			t.Fatalf("got %+v (%v), want %+v", got, err, want)
		}
	}
	// An unknown command is reported and ends the worker.
	out.Reset()
	err = RunConnectionsWorker(context.Background(), WorkerConfig{URL: tg.URL(), Conns: 1}, strings.NewReader("dance\n"), &out)
	if err == nil || !strings.Contains(out.String(), `"error":"unknown worker command`) {
		t.Fatalf("unknown command: %v, output %s", err, out.String())
	}
}

func TestClusterConfigChecked(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []ClusterConfig{
		{Nodes: 0, Conns: 10, Postgres: "postgres://127.0.0.1/x"},
		{Nodes: 2, Conns: 10, Postgres: "postgres://127.0.0.1/x"}, // no NATS
		{Nodes: 1, Conns: 10}, // no PostgreSQL
		{Nodes: 1, Conns: 1 << 19, Postgres: "postgres://127.0.0.1/x"}, // over the file limit
	} {
		if _, err := RunConnectionsCluster(ctx, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := RunConnectionsCluster(ctx, ClusterConfig{Nodes: 1, Conns: 10, Postgres: "postgres://db.example/x"}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("remote PostgreSQL: %v", err)
	}
}

// TestClusterRun runs two real server processes on PostgreSQL + NATS with
// two worker processes, and checks that every connection was open, each
// server's memory grew, and the run's schema is gone afterwards.
func TestClusterRun(t *testing.T) {
	pg, natsURL := os.Getenv("PARLEY_TEST_POSTGRES"), os.Getenv("PARLEY_TEST_NATS")
	if pg == "" || natsURL == "" {
		t.Skip("needs PARLEY_TEST_POSTGRES and PARLEY_TEST_NATS")
	}
	bin := parleyBinary(t)
	ctx := context.Background()
	schemas := func() int {
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'parley_bench_%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := schemas()
	var progress bytes.Buffer
	r, err := RunConnectionsCluster(ctx, ClusterConfig{Exe: bin, Nodes: 2, Conns: 301, Postgres: pg, NATS: natsURL, Settle: 100e6, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	m := r.Memory
	if r.Conns != 301 || m.Open != 301 || len(m.Nodes) != 2 || m.Nodes[0].Conns != 151 || m.Nodes[1].Conns != 150 {
		t.Fatalf("result %+v, nodes %+v", r, m.Nodes)
	}
	for i, n := range m.Nodes {
		if n.Open != n.Conns {
			t.Errorf("server %d: %d of %d connections answered a ping", i, n.Open, n.Conns)
		}
		if n.Loaded.GoInUse <= n.Baseline.GoInUse || n.Loaded.RSS == 0 {
			t.Errorf("server %d: memory did not grow with its connections: %+v", i, n)
		}
	}
	if m.Loaded.RSS != m.Nodes[0].Loaded.RSS+m.Nodes[1].Loaded.RSS {
		t.Errorf("loaded RSS %d is not the sum over the servers", m.Loaded.RSS)
	}
	if after := schemas(); after != before {
		t.Errorf("%d bench schemas before the run, %d after", before, after)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// parleyBinary builds the parley binary once for the package's tests.
func parleyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "parley-bench-test-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "parley")
		if out, err := exec.Command(gobin, "build", "-o", binPath, "github.com/parley-im/parley/cmd/parley").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
