package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/pflag"

	"github.com/parley-im/parley/bench"
)

// clusterOptions are the flags of `parley bench connections` that run
// several server and load-generator processes.
type clusterOptions struct {
	nodes          int
	postgres, nats string
	worker         bool
	source         string
}

func (o *clusterOptions) flags(f *pflag.FlagSet) {
	f.IntVar(&o.nodes, "nodes", 0, "connections --spawn: run this many server processes sharing --postgres and --nats, each with its own load-generator process (for more connections than one process's open-file limit)")
	f.StringVar(&o.postgres, "postgres", "", "with --nodes: PostgreSQL URL on a loopback address; a fresh schema is made in it for the run and dropped afterwards")
	f.StringVar(&o.nats, "nats", "", "with --nodes: NATS URL the server processes share")
	f.BoolVar(&o.worker, "worker", false, "internal: be one load-generator process of a --nodes run (commands on stdin, JSON lines on stdout)")
	f.StringVar(&o.source, "source", "", "internal: with --worker, the loopback address to connect from")
	_ = f.MarkHidden("worker")
	_ = f.MarkHidden("source")
}

// runBenchCluster runs `bench connections --worker` or `--nodes`; it
// reports false when neither flag is set.
func runBenchCluster(ctx context.Context, e *env, stdin io.Reader, o *benchOptions) (bool, error) {
	c := &o.cluster
	if !c.worker && c.nodes == 0 {
		return false, nil
	}
	if o.cfg.Scenario != bench.Connections {
		return true, usageError{errors.New("--nodes and --worker are for the connections scenario")}
	}
	if c.worker {
		cfg := bench.WorkerConfig{URL: o.server, Conns: o.cfg.Conns}
		if _, err := bench.External(o.server); err != nil {
			return true, usageError{err}
		}
		if c.source != "" {
			ip := net.ParseIP(c.source)
			if ip == nil || !ip.IsLoopback() {
				return true, usageError{errors.New("--source must be a loopback IP address")}
			}
			cfg.Source = ip
		}
		return true, bench.RunConnectionsWorker(ctx, cfg, stdin, e.stdout)
	}
	if !o.spawn || o.server != "" {
		return true, usageError{errors.New("--nodes needs --spawn (it starts the server processes)")}
	}
	exe, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("failed to find this binary: %w", err)
	}
	res, err := bench.RunConnectionsCluster(ctx, bench.ClusterConfig{
		Exe: exe, Nodes: c.nodes, Conns: o.cfg.Conns, Postgres: c.postgres, NATS: c.nats,
		Settle: o.cfg.Settle, Progress: e.stderr,
	})
	if errors.Is(err, bench.ErrConfig) || errors.Is(err, bench.ErrNotLoopback) {
		return true, usageError{err}
	}
	if err != nil {
		return true, err
	}
	if o.asJSON {
		return true, json.NewEncoder(e.stdout).Encode(res)
	}
	return true, res.WriteText(e.stdout)
}
