package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/internal/chaos"
)

// newBenchChaosCmd is `parley bench chaos`: the chaos harness of
// internal/chaos run from the binary.
func newBenchChaosCmd(e *env) *cobra.Command {
	cfg := chaos.Config{}
	var asJSON bool
	var dir string
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run the chaos harness: server kills, cut connections, duplicated and reordered frames",
		Long: `Run the chaos harness against this binary's server.

It starts ` + "`parley serve`" + ` (this binary) as a child process on 127.0.0.1 with a
temporary data folder, puts a loopback proxy in front of it, and runs
--devices real clients in one group: --devices minus 4 accounts send
--messages messages over --duration while the proxy cuts connections and
delays, duplicates and reorders WebSocket frames, the server is killed with
SIGKILL and restarted --kills times, a member joins, one leaves, a device is
linked and another linked and revoked. Everyone still in the group then
sends once more. The run checks that every message a client was told was
sent reached every member device exactly once, in the same order
everywhere, with none undecryptable, that removed devices see nothing new,
and that the server's data and log hold no message text.

The exit status is 1 if anything was lost, repeated, misordered,
undecryptable or leaked, or if the run could not be carried out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Devices < chaos.MinDevices {
				return usageError{fmt.Errorf("--devices must be at least %d", chaos.MinDevices)}
			}
			if cfg.Messages < cfg.Devices-4 || cfg.Kills < 0 || cfg.Traffic <= 0 {
				return usageError{errors.New("--messages must be at least --devices minus 4, --kills at least 0, --duration positive")}
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("failed to find this binary: %w", err)
			}
			cfg.Binary = exe
			cfg.Dir = dir
			cfg.Logf = func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
			rep, err := chaos.Run(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("chaos run: %w", err)
			}
			if asJSON {
				if err := json.NewEncoder(e.stdout).Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(e.stdout, rep)
			}
			if !rep.OK() {
				return fmt.Errorf("chaos run failed: lost %d, duplicated %d, undecryptable %d, unordered %d, order differences %d, seen after removal %d, plaintext hits %d",
					rep.Lost, rep.Duplicated, rep.Undecryptable, rep.Unordered, rep.OrderDifferences, rep.SeenAfterRemoval, rep.PlaintextHits)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Devices, "devices", 10, "devices in the run (4 of them churn: joiner, leaver, linked, revoked)")
	f.IntVar(&cfg.Messages, "messages", 500, "messages sent during the traffic")
	f.IntVar(&cfg.Kills, "kills", 3, "server SIGKILL and restart cycles")
	f.DurationVar(&cfg.Traffic, "duration", 12*time.Second, "time the traffic is spread over")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the proxy's and the harness's random choices (0: random, reported)")
	f.Float64Var(&cfg.Duplicate, "duplicate", 0.02, "chance a WebSocket data frame is delivered twice (negative: never)")
	f.Float64Var(&cfg.Reorder, "reorder", 0.05, "chance a WebSocket data frame is swapped with the next one (negative: never)")
	f.DurationVar(&cfg.MaxDelay, "max-delay", 3*time.Millisecond, "largest per-connection frame delay")
	f.StringVar(&dir, "dir", "", "existing folder for the server's data and the clients' profiles, kept afterwards (default: a temporary one, removed)")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}
