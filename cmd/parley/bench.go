package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/bench"
)

func init() { addCommand(newBenchCmd) }

// benchOptions are the flags of `parley bench`.
type benchOptions struct {
	server              string
	spawn, asJSON       bool
	cfg                 bench.Config
	powBits             int
	cpuProfile, memProf string
	cluster             clusterOptions
}

func newBenchCmd(e *env) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench relay|fanout|connections|chaos",
		Short: "Load-test a Parley server with clients that speak the real protocol",
		Long: `Load-test a Parley server with clients that speak the real protocol and
send pre-made opaque payloads.

Scenarios:
  relay        --pairs device pairs, each a group of two, both sending:
               durable messages/s and delivery latency p50/p99/p99.9
  fanout       one group, one sender, --members devices online receiving
  connections  --conns idle authenticated connections: server memory per
               connection. With --spawn --nodes N, N server processes share
               --postgres and --nats and N load-generator processes open the
               connections, for counts above one process's open-file limit
  chaos        the chaos harness (see parley bench chaos --help)

By default bench starts a real server in this process on 127.0.0.1 with a
temporary data directory. --spawn runs ` + "`parley serve`" + ` as a child process
instead, so its memory can be read from /proc/PID/status; --server targets a
running server, which must be on a loopback address (and should have its
rate limits raised). Latency is measured from sending to the push arriving
at another device; a send is durable once the server has answered it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("bench needs one scenario: relay, fanout, connections or chaos")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.cfg.Scenario = bench.Scenario(args[0])
			if ok, err := runBenchCluster(cmd.Context(), e, cmd.InOrStdin(), o); ok {
				return err
			}
			return runBench(cmd.Context(), e, o)
		},
	}
	cmd.AddCommand(newBenchChaosCmd(e))
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of a running server on a loopback address (default: start one)")
	f.BoolVar(&o.spawn, "spawn", false, "run the serve command of this binary as a child process and read its memory from /proc")
	f.IntVar(&o.cfg.Pairs, "pairs", 16, "relay: device pairs")
	f.IntVar(&o.cfg.Members, "members", 100, "fanout: receiving member devices")
	f.IntVar(&o.cfg.Conns, "conns", 1000, "connections: idle authenticated connections")
	f.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "measured time")
	f.DurationVar(&o.cfg.Warmup, "warmup", time.Second, "warm-up time before measuring")
	f.DurationVar(&o.cfg.Settle, "settle", 3*time.Second, "connections: wait before each memory reading")
	f.IntVar(&o.cfg.Size, "size", 256, "payload bytes per message")
	f.Float64Var(&o.cfg.Rate, "rate", 0, "target messages/s over all senders (0: as fast as possible)")
	f.IntVar(&o.cfg.Window, "window", 32, "sends in flight per sender")
	f.IntVar(&o.powBits, "pow-bits", 0, "proof-of-work bits of the server bench starts")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON result object")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file (in-process server: includes it)")
	f.StringVar(&o.memProf, "memprofile", "", "write a heap profile of this process to the file at the end")
	o.cluster.flags(f)
	return cmd
}

func runBench(ctx context.Context, e *env, o *benchOptions) error {
	if o.server != "" && o.spawn {
		return usageError{errors.New("--server and --spawn exclude each other")}
	}
	switch o.cfg.Scenario {
	case bench.Relay, bench.Fanout, bench.Connections:
	default:
		return usageError{fmt.Errorf("unknown scenario %q (relay, fanout, connections or chaos)", o.cfg.Scenario)}
	}
	o.cfg.Progress = e.stderr
	// Every connection is a file on the client side and, in process, on
	// the server side too; a spawned server inherits the limit.
	need := uint64(o.cfg.Conns)*2 + 4096
	if o.cfg.Scenario == bench.Relay {
		need = uint64(o.cfg.Pairs)*4 + 4096
	} else if o.cfg.Scenario == bench.Fanout {
		need = uint64(o.cfg.Members)*2 + 4096
	}
	if got, err := bench.RaiseFileLimit(need); got < need {
		fmt.Fprintf(e.stderr, "warning: open-file limit is %d, the run may need %d: %v\n", got, need, err)
	}
	conns := o.cfg.Conns
	var (
		t   bench.Target
		err error
	)
	switch {
	case o.server != "":
		t, err = bench.External(o.server)
		if err != nil {
			return usageError{err}
		}
	case o.spawn:
		exe, xerr := os.Executable()
		if xerr != nil {
			return fmt.Errorf("failed to find this binary: %w", xerr)
		}
		t, err = bench.Spawn(ctx, exe, o.powBits, conns, nil)
	default:
		t, err = bench.StartInProcess(ctx, o.powBits, conns)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := t.Close(); cerr != nil {
			fmt.Fprintln(e.stderr, "warning:", cerr)
		}
	}()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("failed to create the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("failed to start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(e.stderr, "bench: server %s (%s)\n", t.URL(), t.Kind())
	res, err := bench.Run(ctx, t, o.cfg)
	if err != nil {
		return err
	}
	if o.memProf != "" {
		f, err := os.Create(o.memProf)
		if err != nil {
			return fmt.Errorf("failed to create the heap profile: %w", err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return fmt.Errorf("failed to write the heap profile: %w", err)
		}
	}
	if o.asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	return res.WriteText(e.stdout)
}
