// Package bench is the load generator behind `parley bench`: clients that
// speak the real device protocol (package wire/wireclient) with pre-made
// opaque payloads, against a Parley server on this machine's loopback
// network.
//
// The server under test is a [Target]: [StartInProcess] (a real server in
// this process), [Spawn] (the real binary as a child process, whose memory
// can be read from /proc) or [External] (a running server on a loopback
// address). [Run] runs one [Scenario] against it and returns a [Result]:
//
//   - [Relay]: pairs of devices, each pair a group of two, both devices
//     sending; durable messages per second and delivery latency.
//   - [Fanout]: one group, one sender, M member devices online.
//   - [Connections]: K idle authenticated connections; server memory per
//     connection.
//
// Latency is measured from the moment a send is written to the moment the
// push reaches another member device; a send counts as durable when the
// server has answered it (the server answers only after the write is
// durable). Everything is bounded: the run lasts Warmup+Duration and the
// connection count is fixed.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Scenario names a load pattern.
type Scenario string

// The scenarios.
const (
	Relay       Scenario = "relay"
	Fanout      Scenario = "fanout"
	Connections Scenario = "connections"
)

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("bench: invalid configuration")

// Config describes a run. Zero fields take the defaults in brackets.
type Config struct {
	Scenario Scenario
	// Pairs is the number of device pairs of Relay [16].
	Pairs int
	// Members is the number of receiving member devices of Fanout [100].
	Members int
	// Conns is the number of idle connections of Connections [1000].
	Conns int
	// Duration is the measured time [10s].
	Duration time.Duration
	// Warmup runs before the measured time and is not counted [1s].
	Warmup time.Duration
	// Settle is how long Connections waits for the server to quiesce
	// before each memory reading [3s].
	Settle time.Duration
	// Size is the payload size in bytes [256].
	Size int
	// Rate is the total target sends per second (0: as fast as possible).
	Rate float64
	// Window is the number of sends each sender keeps in flight [32].
	Window int
	// Progress receives progress lines (may be nil).
	Progress io.Writer
	// Rand is the source of keys and ids [crypto/rand].
	Rand io.Reader
}

const maxCount = 1 << 20

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Pairs, 16)
	def(&c.Members, 100)
	def(&c.Conns, 1000)
	def(&c.Size, 256)
	def(&c.Window, 32)
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Settle == 0 {
		c.Settle = 3 * time.Second
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	switch {
	case c.Scenario != Relay && c.Scenario != Fanout && c.Scenario != Connections:
		return c, fmt.Errorf("%w: unknown scenario %q (relay, fanout or connections)", ErrConfig, c.Scenario)
	case c.Pairs < 1 || c.Pairs > maxCount/2, c.Members < 1 || c.Members > maxCount, c.Conns < 1 || c.Conns > maxCount:
		return c, fmt.Errorf("%w: pairs, members and conns must be between 1 and %d", ErrConfig, maxCount/2)
	case c.Size < 1 || c.Size > 512<<10:
		return c, fmt.Errorf("%w: size must be between 1 and %d bytes", ErrConfig, 512<<10)
	case c.Window < 1 || c.Window > 1024:
		return c, fmt.Errorf("%w: window must be between 1 and 1024", ErrConfig)
	case c.Duration < 0 || c.Duration > 24*time.Hour, c.Warmup < 0 || c.Warmup > time.Hour, c.Settle < 0 || c.Settle > time.Hour:
		return c, fmt.Errorf("%w: durations must be positive and bounded", ErrConfig)
	case c.Rate < 0 || c.Rate > 1e8:
		return c, fmt.Errorf("%w: rate must be between 0 and 1e8", ErrConfig)
	}
	return c, nil
}

// Result is the outcome of one run. Its JSON form is stable.
type Result struct {
	Scenario        Scenario `json:"scenario"`
	Target          string   `json:"target"`
	Pairs           int      `json:"pairs,omitempty"`
	Members         int      `json:"members,omitempty"`
	Conns           int      `json:"conns,omitempty"`
	Size            int      `json:"size,omitempty"`
	Window          int      `json:"window,omitempty"`
	TargetRate      float64  `json:"target_rate,omitempty"`
	DurationSeconds float64  `json:"duration_s,omitempty"`
	// Sent counts sends the server acknowledged (durably stored) inside the
	// measured window; SendRate is per second.
	Sent     uint64  `json:"sent,omitempty"`
	SendRate float64 `json:"durable_msgs_per_s,omitempty"`
	// Delivered counts pushes received by devices other than the sender
	// inside the window; DeliveryRate is per second.
	Delivered    uint64  `json:"delivered,omitempty"`
	DeliveryRate float64 `json:"delivered_msgs_per_s,omitempty"`
	// Latency is from send to push receipt on another device.
	Latency *Latency `json:"latency_ms,omitempty"`
	// AckLatency is from send to the server's answer, which comes once the
	// message is durable (fsynced); pushes may leave before that.
	AckLatency *Latency `json:"ack_latency_ms,omitempty"`
	// Errors counts failed sends; FirstError is the first of them.
	Errors     uint64 `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// Behind counts paced sends dropped because every sender was busy
	// (the target rate was not reached).
	Behind uint64 `json:"behind,omitempty"`
	// CPU is the CPU time used during the window.
	CPU *CPUUse `json:"cpu,omitempty"`
	// Memory is the Connections scenario's result.
	Memory *MemoryResult `json:"memory,omitempty"`
	Notes  []string      `json:"notes,omitempty"`
}

// Latency summarises delivery latencies in milliseconds.
type Latency struct {
	Samples uint64  `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p999"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
}

// CPUUse is the CPU time used in the measured window: in cores (CPU
// seconds per second) and in microseconds per durable message. On a loaded
// machine the per-message figures say more than the rates: they estimate
// what an idle machine would do (cores / (server + client per message)).
type CPUUse struct {
	ServerCores    float64 `json:"server_cores"`
	ServerPerMsgUs float64 `json:"server_us_per_msg"`
	ClientCores    float64 `json:"client_cores"`
	ClientPerMsgUs float64 `json:"client_us_per_msg"`
	// SameProcess is set for an in-process server: then the server
	// figures are the whole process (clients included) and equal the
	// client ones.
	SameProcess bool `json:"same_process,omitempty"`
}

// MemoryResult is the server's memory before and after opening the idle
// connections.
type MemoryResult struct {
	// Idle is the reading right after start, before any client.
	Idle Memory `json:"idle"`
	// Baseline is the reading after the devices were registered (their
	// registration connections closed), before the idle connections opened.
	Baseline Memory `json:"baseline"`
	// Loaded is the reading with every idle connection open.
	Loaded Memory `json:"loaded"`
	// Open is the number of connections that answered a ping after the
	// loaded reading.
	Open int `json:"open"`
	// RSSPerConn is (Loaded.RSS - Baseline.RSS) / connections, in bytes.
	RSSPerConn float64 `json:"rss_bytes_per_conn"`
	// GoPerConn is the same for Go heap+stacks in use.
	GoPerConn float64 `json:"go_bytes_per_conn"`
	// Nodes has each server process's figures when several ran
	// (RunConnectionsCluster); the readings above are their sums.
	Nodes []NodeMemory `json:"nodes,omitempty"`
}

// Run runs cfg's scenario against t.
func Run(ctx context.Context, t Target, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: cfg.Scenario, Target: t.Kind()}
	switch cfg.Scenario {
	case Relay:
		err = runRelay(ctx, t, cfg, r)
	case Fanout:
		err = runFanout(ctx, t, cfg, r)
	case Connections:
		err = runConnections(ctx, t, cfg, r)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to run the %s scenario: %w", cfg.Scenario, err)
	}
	return r, nil
}

func newTraffic(cfg Config, tg Target, senders int) *traffic {
	t := &traffic{
		serverCPU: tg.CPU,
		from:      cfg.Warmup, until: cfg.Warmup + cfg.Duration,
		payload: make([]byte, cfg.Size), window: cfg.Window,
	}
	_, _ = io.ReadFull(cfg.Rand, t.payload) // opaque filler, like ciphertext
	if cfg.Rate > 0 {
		t.perSender = cfg.Rate / float64(senders)
	}
	t.ownProcess = tg.Kind() != "in-process"
	return t
}

// loadGenGOGC is the garbage collector's target percentage in the load
// generator while traffic runs against a server in another process: the
// load generator shares the machine's cores with the server, and its
// garbage is short-lived decoded pushes. The server keeps its own setting.
const loadGenGOGC = 400

func (r *Result) setTraffic(cfg Config) {
	r.Size, r.Window, r.TargetRate = cfg.Size, cfg.Window, cfg.Rate
	r.DurationSeconds = cfg.Duration.Seconds()
}
