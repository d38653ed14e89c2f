package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-im/parley/wire"
)

// runRelay: Pairs groups of two devices; both devices of a pair send to
// their group, so each message has one recipient.
func runRelay(ctx context.Context, t Target, cfg Config, r *Result) error {
	r.Pairs = cfg.Pairs
	r.setTraffic(cfg)
	n := 2 * cfg.Pairs
	fmt.Fprintf(cfg.Progress, "relay: registering %d devices\n", n)
	devs, err := newDevices(ctx, newDialer(t.URL(), n), cfg.Rand, n, 4096)
	if err != nil {
		return err
	}
	groups := make([][]byte, cfg.Pairs)
	err = parallel(ctx, cfg.Pairs, 16, func(i int) error {
		a, b := devs[2*i], devs[2*i+1]
		groups[i] = fmt.Appendf(nil, "bench-relay-%d-%x", i, a.id[:4])
		if err := a.c.CreateGroup(ctx, groups[i]); err != nil {
			return fmt.Errorf("failed to create a group: %w", err)
		}
		return commitAdding(ctx, a.c, groups[i], 0, cfg.Rand, []*wire.DeviceRef{b.ref()})
	})
	if err != nil {
		closeDevices(devs)
		return err
	}
	tr := newTraffic(cfg, t, n)
	fmt.Fprintf(cfg.Progress, "relay: %d pairs sending for %v (+%v warm-up)\n", cfg.Pairs, cfg.Duration, cfg.Warmup)
	tr.start = time.Now()
	err = tr.run(ctx, devs, func(ctx context.Context, wg *sync.WaitGroup) {
		for i, d := range devs {
			tr.sender(ctx, wg, d, uint32(i), groups[i/2], 1)
		}
	})
	tr.fill(r)
	return err
}
