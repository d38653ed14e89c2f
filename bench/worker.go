package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/wire/wireclient"
)

// tcpAddrs matches the addresses in a network error, so that errors that
// differ only in them are counted together.
var tcpAddrs = regexp.MustCompile(`tcp [0-9.:]+->[0-9.:]+`)

// WorkerConfig describes one load-generator process of
// RunConnectionsCluster.
type WorkerConfig struct {
	// URL is the server's WebSocket URL.
	URL string
	// Conns is the number of devices to register and connections to open.
	Conns int
	// Source is the local address connections are made from (nil: any).
	Source net.IP
}

// RunConnectionsWorker is the worker side of RunConnectionsCluster: it
// registers cfg.Conns devices, reports "registered", and then follows the
// commands read from in, one per line: "connect" opens an authenticated
// idle connection per device and reports "open"; "ping" pings every
// connection and reports how many answered ("alive"); "exit" (or the end
// of in) closes everything and returns. Reports are JSON lines on out.
func RunConnectionsWorker(ctx context.Context, cfg WorkerConfig, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	report := func(phase string, n int, err error) error {
		s := workerStatus{Phase: phase, N: n}
		if err != nil {
			s.Error = err.Error()
		}
		if eerr := enc.Encode(s); eerr != nil {
			return eerr
		}
		return err
	}
	if cfg.Conns < 1 || cfg.Conns > maxCount {
		return report("", 0, fmt.Errorf("%w: conns must be between 1 and %d", ErrConfig, maxCount))
	}
	if got, err := RaiseFileLimit(uint64(cfg.Conns) + fdReserve); got < uint64(cfg.Conns)+fdReserve {
		return report("", 0, fmt.Errorf("%d connections do not fit this process's open-file limit: %v", cfg.Conns, err))
	}
	// No TCP keep-alive from the load generator: the ping phase finds dead
	// connections, and with tens of thousands of connections opened within
	// a minute Go's default (a probe every 15 s per connection, timers
	// aligned) sends bursts that overflow the loopback backlog
	// (net.core.netdev_max_backlog) on a loaded machine; the servers' own
	// probes remain.
	nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	if cfg.Source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: cfg.Source}
	}
	d := &dialer{url: cfg.URL, clients: []*http.Client{{Transport: &http.Transport{DialContext: nd.DialContext}}}}
	k := cfg.Conns
	ids := make([]*identityKeys, k)
	workers := min(8, k)
	per := (k + workers - 1) / workers
	err := parallel(ctx, workers, workers, func(w int) error {
		c, err := d.dial(ctx, 4)
		if err != nil {
			return err
		}
		defer c.CloseNow()
		for i := w * per; i < min((w+1)*per, k); i++ {
			if ids[i], err = newIdentity(rand.Reader); err != nil {
				return err
			}
			if err := register(ctx, c, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err := report("registered", k, err); err != nil {
		return err
	}
	clients := make([]*wireclient.Client, k)
	defer func() {
		_ = parallel(context.Background(), k, 256, func(i int) error {
			if clients[i] != nil {
				clients[i].CloseNow()
			}
			return nil
		})
	}()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "connect":
			err := parallel(ctx, k, 64, func(i int) error {
				c, err := d.dial(ctx, 4)
				if err != nil {
					return err
				}
				clients[i] = c
				id := ids[i]
				if err := c.Authenticate(ctx, id.account.ID(), id.id, id.key); err != nil {
					return fmt.Errorf("failed to authenticate: %w", err)
				}
				return nil
			})
			if err := report("open", k, err); err != nil {
				return err
			}
		case "ping":
			var (
				alive atomic.Int64
				mu    sync.Mutex
				fails = map[string]int{}
			)
			_ = parallel(ctx, k, 256, func(i int) error {
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if clients[i] == nil {
					return nil
				}
				if _, err := clients[i].Ping(pctx); err != nil {
					mu.Lock()
					fails[tcpAddrs.ReplaceAllString(err.Error(), "tcp A->B")]++
					mu.Unlock()
					return nil
				}
				alive.Add(1)
				return nil
			})
			s := workerStatus{Phase: "alive", N: int(alive.Load())}
			for e, n := range fails {
				s.Notes = append(s.Notes, fmt.Sprintf("%d pings failed: %s", n, e))
			}
			if err := enc.Encode(s); err != nil {
				return err
			}
		case "exit":
			return nil
		default:
			return report("", 0, fmt.Errorf("unknown worker command %q", sc.Text()))
		}
	}
	return sc.Err()
}
