package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-im/parley/wire"
)

// runFanout: one group of Members receiving devices and one sender.
func runFanout(ctx context.Context, t Target, cfg Config, r *Result) error {
	r.Members = cfg.Members
	r.setTraffic(cfg)
	n := cfg.Members + 1
	fmt.Fprintf(cfg.Progress, "fanout: registering %d devices\n", n)
	devs, err := newDevices(ctx, newDialer(t.URL(), n), cfg.Rand, n, 4096)
	if err != nil {
		return err
	}
	sender := devs[0]
	group := fmt.Appendf(nil, "bench-fanout-%x", sender.id[:8])
	if err := sender.c.CreateGroup(ctx, group); err != nil {
		closeDevices(devs)
		return fmt.Errorf("failed to create the group: %w", err)
	}
	var epoch uint64
	for i := 1; i < n; i += wire.MaxCommitDevices {
		var added []*wire.DeviceRef
		for _, d := range devs[i:min(i+wire.MaxCommitDevices, n)] {
			added = append(added, d.ref())
		}
		if err := commitAdding(ctx, sender.c, group, epoch, cfg.Rand, added); err != nil {
			closeDevices(devs)
			return err
		}
		epoch++
	}
	tr := newTraffic(cfg, t, 1)
	fmt.Fprintf(cfg.Progress, "fanout: one sender to %d members for %v (+%v warm-up)\n", cfg.Members, cfg.Duration, cfg.Warmup)
	tr.start = time.Now()
	err = tr.run(ctx, devs, func(ctx context.Context, wg *sync.WaitGroup) {
		tr.sender(ctx, wg, sender, 0, group, epoch)
	})
	tr.fill(r)
	return err
}
