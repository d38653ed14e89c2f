// Command parley is the one Parley binary: the homeserver (`parley serve`),
// its administration (`parley admin ...`) and, later, the clients.
//
// Each command group lives in its own file and registers its constructor in
// init with addCommand, so a new group is a new file. Commands read their
// flags from cobra, with PARLEY_* environment variables as fallbacks
// (PARLEY_POW_BITS for --pow-bits); no flag state is global.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(&env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "parley:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}
