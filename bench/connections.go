package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/wire/wireclient"
)

// runConnections measures the server's memory per idle authenticated
// connection. Devices are registered first over a few connections that
// are then closed, so the store's growth from registration is in the
// baseline; then Conns connections authenticate and stay idle.
func runConnections(ctx context.Context, t Target, cfg Config, r *Result) error {
	k := cfg.Conns
	r.Conns = k
	m := &MemoryResult{}
	var err error
	if m.Idle, err = t.Memory(ctx); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "connections: idle server: RSS %s\n", mib(m.Idle.RSS))

	ids := make([]*identityKeys, k)
	d := newDialer(t.URL(), k)
	workers := min(32, k)
	per := (k + workers - 1) / workers
	var done atomic.Int64
	fmt.Fprintf(cfg.Progress, "connections: registering %d devices\n", k)
	err = parallel(ctx, workers, workers, func(w int) error {
		c, err := d.dial(ctx, 4)
		if err != nil {
			return err
		}
		defer c.CloseNow()
		for i := w * per; i < min((w+1)*per, k); i++ {
			if ids[i], err = newIdentity(cfg.Rand); err != nil {
				return err
			}
			if err := register(ctx, c, ids[i]); err != nil {
				return err
			}
			if n := done.Add(1); n%10000 == 0 {
				fmt.Fprintf(cfg.Progress, "connections: %d registered\n", n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return err
	}
	if m.Baseline, err = t.Memory(ctx); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "connections: after registration: RSS %s; opening %d connections\n", mib(m.Baseline.RSS), k)

	clients := make([]*wireclient.Client, k)
	defer func() {
		_ = parallel(context.Background(), k, 256, func(i int) error {
			if clients[i] != nil {
				clients[i].CloseNow()
			}
			return nil
		})
	}()
	done.Store(0)
	err = parallel(ctx, k, 128, func(i int) error {
		c, err := d.dial(ctx, 4)
		if err != nil {
			return err
		}
		clients[i] = c
		id := ids[i]
		if err := c.Authenticate(ctx, id.account.ID(), id.id, id.key); err != nil {
			return fmt.Errorf("failed to authenticate: %w", err)
		}
		if n := done.Add(1); n%10000 == 0 {
			fmt.Fprintf(cfg.Progress, "connections: %d open\n", n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, cfg.Settle); err != nil {
		return err
	}
	if m.Loaded, err = t.Memory(ctx); err != nil {
		return err
	}
	var open atomic.Int64
	_ = parallel(ctx, k, 256, func(i int) error {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := clients[i].Ping(pctx); err == nil {
			open.Add(1)
		}
		return nil
	})
	m.Open = int(open.Load())
	m.RSSPerConn = (float64(m.Loaded.RSS) - float64(m.Baseline.RSS)) / float64(k)
	m.GoPerConn = (float64(m.Loaded.GoInUse) - float64(m.Baseline.GoInUse)) / float64(k)
	r.Memory = m
	if t.Kind() == "in-process" {
		r.Notes = append(r.Notes, "in-process: memory is this whole process, so the per-connection figures include the load generator's own client side; use --spawn for the server alone")
	}
	if len(d.clients) > 1 {
		r.Notes = append(r.Notes, fmt.Sprintf("connections spread over %d source addresses 127.0.0.1-%d to avoid ephemeral port exhaustion", len(d.clients), len(d.clients)))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
