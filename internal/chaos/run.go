package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/canary"
	"github.com/parley-im/parley/internal/serverproc"
)

// Config sizes one chaos run.
type Config struct {
	// Binary is the parley binary whose `serve` command is the server.
	Binary string
	// Dir holds the server's data, its log and the clients' profiles. It
	// must exist; empty means a temporary folder removed at the end.
	Dir string
	// Devices is the number of devices in the run: Devices-4 stable
	// accounts (one device each, all sending) and four that churn: a
	// joiner, a leaver, a linked device and a linked-then-revoked one. At
	// least 8.
	Devices int
	// Messages is the number of chat messages sent during the traffic.
	Messages int
	// Kills is the number of server SIGKILL and restart cycles.
	Kills int
	// Traffic is over how long the messages are spread.
	Traffic time.Duration
	// Seed makes the proxy's and the harness's random choices repeatable
	// (0: a random seed, reported).
	Seed uint64
	// MaxDelay is the largest per-connection frame delay (default 3ms).
	MaxDelay time.Duration
	// Duplicate and Reorder are the chances that a WebSocket data frame
	// is delivered twice or swapped with the next one (defaults 2% and 5%;
	// negative turns them off).
	Duplicate, Reorder float64
	// Logf receives progress lines (nil: none).
	Logf func(format string, args ...any)
}

// MinDevices is the smallest Config.Devices: four stable accounts and the
// four churning devices.
const MinDevices = 8

// Report is what a run measured and found.
type Report struct {
	Seed     uint64 `json:"seed"`
	Devices  int    `json:"devices"`
	Messages int    `json:"messages"`
	Final    int    `json:"final_messages"`
	Kills    int    `json:"kills"`
	Cuts     int    `json:"connections_cut"`
	// Frames, DuplicatedFrames and ReorderedFrames count the WebSocket
	// frames through the proxy and what it did to them.
	Frames           int64 `json:"frames"`
	DuplicatedFrames int64 `json:"duplicated_frames"`
	ReorderedFrames  int64 `json:"reordered_frames"`
	// Lost counts messages missing from a device that should hold them;
	// Duplicated messages a device shows twice; Undecryptable messages
	// a member device could not decrypt; Unordered messages still without
	// a server position; OrderDifferences places where a device's order
	// differs from the reference device's.
	Lost             int   `json:"lost"`
	Duplicated       int   `json:"duplicated"`
	Undecryptable    int64 `json:"undecryptable"`
	Unordered        int   `json:"unordered"`
	OrderDifferences int   `json:"order_differences"`
	// SeenAfterRemoval counts final messages the removed or revoked
	// device holds; PlaintextHits the canary's finds in the server's
	// data folder and log.
	SeenAfterRemoval int `json:"seen_after_removal"`
	PlaintextHits    int `json:"plaintext_hits"`
	// Times, in seconds: setup, the traffic with its chaos, convergence
	// after it, and the whole run.
	SetupSeconds    float64 `json:"setup_seconds"`
	TrafficSeconds  float64 `json:"traffic_seconds"`
	ConvergeSeconds float64 `json:"converge_seconds"`
	TotalSeconds    float64 `json:"total_seconds"`
	// ClientCPUSeconds is this process's CPU time (all clients and the
	// proxy), ServerCPUSeconds that of the server processes, killed ones
	// included.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
}

// OK reports whether the run lost, repeated, misordered or leaked nothing.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Undecryptable == 0 && r.Unordered == 0 &&
		r.OrderDifferences == 0 && r.SeenAfterRemoval == 0 && r.PlaintextHits == 0
}

// String is a one-paragraph summary.
func (r Report) String() string {
	return fmt.Sprintf("chaos (seed %d): %d devices, %d messages (+%d final), %d server kills, %d connections cut, %d of %d frames duplicated and %d reordered; "+
		"lost %d, duplicated %d, undecryptable %d, unordered %d, order differences %d, seen after removal %d, plaintext hits %d; "+
		"setup %.1fs, traffic %.1fs, converged %.1fs after, total %.1fs; CPU: clients %.1fs, server %.1fs",
		r.Seed, r.Devices, r.Messages, r.Final, r.Kills, r.Cuts, r.DuplicatedFrames, r.Frames, r.ReorderedFrames,
		r.Lost, r.Duplicated, r.Undecryptable, r.Unordered, r.OrderDifferences, r.SeenAfterRemoval, r.PlaintextHits,
		r.SetupSeconds, r.TrafficSeconds, r.ConvergeSeconds, r.TotalSeconds, r.ClientCPUSeconds, r.ServerCPUSeconds)
}

// world is one chaos run's servers, proxy and clients.
type world struct {
	ctx     context.Context
	cfg     Config
	data    string
	logPath string
	proxy   *Proxy
	url     string
	logf    func(string, ...any)
	opts    client.Options
	dirs    atomic.Int64

	rmu sync.Mutex
	rnd *rand.Rand

	mu   sync.Mutex
	srv  *serverproc.Proc
	wg   sync.WaitGroup
	runs map[*client.Client]context.CancelFunc
}

// clientOptions are the options of every client of a run; their
// diagnostics (never message content) go to clients.log in Config.Dir.
func clientOptions(logger *slog.Logger) client.Options {
	return client.Options{KeyPackageStock: 6, MaxBackoff: 300 * time.Millisecond, Logger: logger}
}

func (w *world) intn(n int) int {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return w.rnd.IntN(n)
}

// profile returns a fresh profile folder and the options of its client,
// whose log lines name the folder.
func (w *world) profile() (string, client.Options) {
	n := w.dirs.Add(1)
	o := w.opts
	o.Logger = o.Logger.With("client", n)
	return filepath.Join(w.cfg.Dir, "clients", fmt.Sprint(n)), o
}

func (w *world) start(c *client.Client) {
	ctx, cancel := context.WithCancel(w.ctx)
	w.mu.Lock()
	w.runs[c] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() { defer w.wg.Done(); _ = c.Run(ctx) }()
}

func (w *world) account() (*client.Client, error) {
	var c *client.Client
	var err error
	for i := range 8 { // the proxy may cut registration short, the server be down; try again
		dir, o := w.profile()
		if c, err = client.Init(w.ctx, dir, w.url, o); err == nil {
			w.start(c)
			return c, nil
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	return nil, fmt.Errorf("init: %w", err)
}

// link links a new device to approver's account while the chaos goes on:
// cuts and kills do not pause, both devices reconnect on their own. Only
// NewLink (registering the throwaway mailbox) is tried again from scratch,
// as account creation is.
func (w *world) link(approver *client.Client) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(w.ctx, time.Hour)
	defer cancel()
	began := time.Now()
	var pl *client.PendingLink
	var err error
	for i := range 8 {
		dir, o := w.profile()
		if pl, err = client.NewLink(ctx, dir, w.url, o); err == nil {
			break
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("new link: %w", err)
	}
	defer pl.Close()
	errc := make(chan error, 1)
	go func() { errc <- approver.ApproveLink(ctx, pl.Request()) }()
	c, err := pl.Wait(ctx)
	if err != nil {
		cancel()
		<-errc
		return nil, fmt.Errorf("wait for link: %w", err)
	}
	w.logf("chaos: the new device has its profile after %v; waiting for the approver to add it", time.Since(began).Round(time.Millisecond))
	if err := <-errc; err != nil {
		c.Close()
		return nil, fmt.Errorf("approve link: %w", err)
	}
	w.start(c)
	return c, nil
}

// restart kills the server with SIGKILL, keeps it down for a moment, and
// starts it again over the same data.
func (w *world) restart(down time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.proxy.SetBackend("")
	if err := w.srv.Kill(); err != nil {
		return err
	}
	w.proxy.Cut(1)
	time.Sleep(down)
	srv, err := startServer(w.cfg.Binary, w.data, w.logPath)
	if err != nil {
		return err
	}
	w.srv = srv
	w.proxy.SetBackend(srv.Addr())
	return nil
}

func addr(c *client.Client) string { return string(c.Me().AccountID) }

// retry runs f until it succeeds or five attempts fail.
func retry(what string, f func() error) error {
	var err error
	for i := range 5 {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(200*(i+1)) * time.Millisecond)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// secs is d in seconds, to the millisecond.
func secs(d time.Duration) float64 { return d.Round(time.Millisecond).Seconds() }

// cpu returns this process's and its waited-for children's CPU time.
func cpu() (self, children time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// Run runs one chaos run: a real server (cfg.Binary serve) behind a Proxy,
// cfg.Devices real clients in one group, cfg.Messages messages sent over
// cfg.Traffic while connections are cut, frames delayed, duplicated and
// reordered, the server is killed cfg.Kills times, a member joins, one
// leaves, a device is linked and another linked and revoked. Everyone
// still in the group then sends once more, and Run waits for the devices
// to converge and counts. An error means the run itself could not be
// carried out (setup, a send or a membership change failed); what the
// checks found is in the Report (see [Report.OK]).
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Binary == "" {
		return Report{}, errors.New("chaos: no parley binary")
	}
	if cfg.Devices < MinDevices {
		return Report{}, fmt.Errorf("chaos: %d devices, at least %d", cfg.Devices, MinDevices)
	}
	if cfg.Messages < cfg.Devices-4 || cfg.Kills < 0 || cfg.Traffic <= 0 {
		return Report{}, fmt.Errorf("chaos: want at least one message per stable device, kills ≥ 0 and a traffic time")
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "parley-chaos-")
		if err != nil {
			return Report{}, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 3 * time.Millisecond
	}
	if cfg.Duplicate == 0 {
		cfg.Duplicate = 0.02
	}
	if cfg.Reorder == 0 {
		cfg.Reorder = 0.05
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := Report{Seed: cfg.Seed, Devices: cfg.Devices}
	began := time.Now()
	cpuSelf0, cpuChildren0 := cpu()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Hour)
	defer cancel()
	w := &world{ctx: ctx, cfg: cfg, data: filepath.Join(cfg.Dir, "server"), logPath: filepath.Join(cfg.Dir, "server.log"),
		logf: logf, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1)), runs: map[*client.Client]context.CancelFunc{}}
	if err := os.MkdirAll(w.data, 0o700); err != nil {
		return rep, err
	}
	clientLog, err := os.OpenFile(filepath.Join(cfg.Dir, "clients.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return rep, err
	}
	defer clientLog.Close()
	w.opts = clientOptions(slog.New(slog.NewTextHandler(clientLog, &slog.HandlerOptions{Level: slog.LevelInfo})))
	p, err := NewProxy(cfg.MaxDelay, cfg.Seed)
	if err != nil {
		return rep, err
	}
	w.proxy = p
	w.url = "ws://" + p.Addr() + "/v1/ws"
	if w.srv, err = startServer(cfg.Binary, w.data, w.logPath); err != nil {
		p.Close()
		return rep, err
	}
	p.SetBackend(w.srv.Addr())
	p.SetFrameChaos(max(cfg.Duplicate, 0), max(cfg.Reorder, 0))
	var stopErr error
	defer func() {
		w.mu.Lock()
		for _, stop := range w.runs {
			stop()
		}
		w.mu.Unlock()
		w.wg.Wait()
		for c := range w.runs {
			c.Close()
		}
		p.Close()
		w.mu.Lock()
		stopErr = w.srv.Stop()
		w.mu.Unlock()
		if stopErr != nil {
			logf("chaos: %v", stopErr)
		}
	}()
	if err := w.run(&rep, began); err != nil {
		return rep, err
	}
	rep.Frames, rep.DuplicatedFrames, rep.ReorderedFrames = p.FrameStats()
	rep.TotalSeconds = secs(time.Since(began))
	self, children := cpu()
	rep.ClientCPUSeconds, rep.ServerCPUSeconds = secs(self-cpuSelf0), secs(children-cpuChildren0)
	return rep, nil
}

// run is Run with the world set up.
func (w *world) run(rep *Report, began time.Time) error {
	ctx, cfg, logf := w.ctx, w.cfg, w.logf
	accounts := cfg.Devices - 4
	stable := make([]*client.Client, accounts)
	errs := make([]error, accounts)
	var wgInit sync.WaitGroup
	for i := range stable {
		wgInit.Add(1)
		go func() { defer wgInit.Done(); stable[i], errs[i] = w.account() }()
	}
	wgInit.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	joiner, err := w.account()
	if err != nil {
		return err
	}
	leaver, err := w.account()
	if err != nil {
		return err
	}
	var initial []string
	for _, c := range stable[1:] {
		initial = append(initial, addr(c))
	}
	initial = append(initial, addr(leaver))
	chat, err := stable[0].CreateGroup(ctx, "chaos", initial)
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	waitChat := func(c *client.Client) error {
		deadline := time.Now().Add(2*time.Minute + time.Duration(accounts)*time.Second)
		for time.Now().Before(deadline) {
			if _, err := c.History(ctx, chat, store.HistoryQuery{Limit: 1}); err == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("%s never got the chat", c.Me().AccountID)
	}
	for _, c := range append(slices.Clone(stable), leaver) {
		if err := waitChat(c); err != nil {
			return err
		}
	}
	// Two admins, so that membership commits come from two devices.
	if err := stable[0].SetAdmins(ctx, chat, []string{addr(stable[0]), addr(stable[1])}); err != nil {
		return fmt.Errorf("set admins: %w", err)
	}
	for deadline := time.Now().Add(time.Minute); !slices.Contains(stable[1].Admins(ctx, chat), stable[1].Me().AccountID); {
		if time.Now().After(deadline) {
			return errors.New("the second admin never learned it is one")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.SetupSeconds = secs(time.Since(began))
	logf("chaos: setup: %d accounts in the group after %v", accounts+1, time.Since(began).Round(time.Millisecond))

	// Traffic, with chaos alongside.
	tag := fmt.Sprintf("%08x", rand.Uint32())
	var (
		mu      sync.Mutex
		sent    []string
		sendErr error
		kills   atomic.Int64
		cuts    atomic.Int64
	)
	perSender := cfg.Messages / accounts
	gap := cfg.Traffic / time.Duration(max(perSender, 1))
	trafficStart := time.Now()
	var traffic sync.WaitGroup
	for i, c := range stable {
		n := perSender
		if i < cfg.Messages%accounts {
			n++
		}
		rnd := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+100))
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			for j := range n {
				text := fmt.Sprintf("chaos-%s-%d-%d", tag, i, j)
				if _, err := c.Send(ctx, chat, text); err != nil {
					mu.Lock()
					sendErr = errors.Join(sendErr, fmt.Errorf("send %s: %w", text, err))
					mu.Unlock()
					return
				}
				mu.Lock()
				sent = append(sent, text)
				mu.Unlock()
				time.Sleep(gap/2 + time.Duration(rnd.Int64N(int64(gap)+1)))
			}
		}()
	}
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	var killErr error
	chaos.Add(3)
	go func() { // server kills, spread over the traffic
		defer chaos.Done()
		for k := range cfg.Kills {
			at := trafficStart.Add(cfg.Traffic * time.Duration(k+1) / time.Duration(cfg.Kills+1))
			select {
			case <-stop:
				return
			case <-time.After(time.Until(at)):
			}
			if killErr = w.restart(time.Duration(50+w.intn(300)) * time.Millisecond); killErr != nil {
				return
			}
			kills.Add(1)
			logf("chaos: server kill %d of %d", k+1, cfg.Kills)
		}
	}()
	go func() { // connection cuts
		defer chaos.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(150+w.intn(350)) * time.Millisecond):
				cuts.Add(int64(w.proxy.Cut(0.25)))
			}
		}
	}()
	go func() { // progress
		defer chaos.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Second):
				mu.Lock()
				n := len(sent)
				mu.Unlock()
				logf("chaos: %d of %d messages sent, %d kills, %d cuts", n, cfg.Messages, kills.Load(), cuts.Load())
			}
		}
	}()
	var linked, revoked *client.Client
	var churnErr error
	churn := make(chan struct{})
	go func() { // membership changes, linking and revocation during traffic
		defer close(churn)
		at := func(f float64) { time.Sleep(time.Until(trafficStart.Add(time.Duration(f * float64(cfg.Traffic))))) }
		at(0.15)
		if churnErr = retry("add joiner", func() error { return stable[0].AddMembers(ctx, chat, []string{addr(joiner)}) }); churnErr != nil {
			return
		}
		at(0.3)
		if churnErr = retry("remove leaver", func() error { return stable[1].RemoveMembers(ctx, chat, []string{addr(leaver)}) }); churnErr != nil {
			return
		}
		at(0.45)
		began := time.Now()
		if linked, churnErr = w.link(stable[2]); churnErr != nil {
			return
		}
		logf("chaos: linked a device during traffic in %v", time.Since(began).Round(time.Millisecond))
		at(0.6)
		began = time.Now()
		if revoked, churnErr = w.link(stable[3]); churnErr != nil {
			return
		}
		logf("chaos: linked another device in %v", time.Since(began).Round(time.Millisecond))
		at(0.75)
		churnErr = retry("revoke", func() error { return stable[3].RevokeDevice(ctx, revoked.Me().DeviceID) })
		logf("chaos: linked and revoked a device during traffic")
	}()
	traffic.Wait()
	<-churn
	close(stop)
	chaos.Wait()
	w.proxy.SetFrameChaos(0, 0)
	trafficTime := time.Since(trafficStart)
	rep.TrafficSeconds = secs(trafficTime)
	rep.Messages, rep.Kills, rep.Cuts = len(sent), int(kills.Load()), int(cuts.Load())
	if err := errors.Join(sendErr, killErr); err != nil {
		return err
	}
	if churnErr != nil {
		return fmt.Errorf("churn: %w", churnErr)
	}
	if len(sent) != cfg.Messages || kills.Load() != int64(cfg.Kills) {
		return fmt.Errorf("sent %d of %d messages with %d of %d kills", len(sent), cfg.Messages, kills.Load(), cfg.Kills)
	}

	// Everyone still in the group sends once more; all of it must arrive.
	members := append(slices.Clone(stable), joiner, linked)
	var final []string
	for i, c := range members {
		text := fmt.Sprintf("final-%s-%d", tag, i)
		if _, err := c.Send(ctx, chat, text); err != nil {
			return fmt.Errorf("final send: %w", err)
		}
		final = append(final, text)
	}
	rep.Final = len(final)

	// Converge, then count.
	logf("chaos: traffic over after %v; waiting for the devices to converge", trafficTime.Round(time.Millisecond))
	var f figures
	deadline := time.Now().Add(2*time.Minute + time.Duration(cfg.Messages)*20*time.Millisecond)
	for {
		f = check(ctx, chat, stable, []*client.Client{joiner, linked}, sent, final)
		if f == (figures{}) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.ConvergeSeconds = secs(time.Since(trafficStart) - trafficTime)
	for _, c := range append(slices.Clone(members), leaver) {
		rep.Undecryptable += c.Undecryptable()
	}
	rep.Lost, rep.Duplicated, rep.Unordered, rep.OrderDifferences = f.lost, f.dup, f.pending, f.misordered
	// The leaver and the revoked device see nothing sent after the end.
	for _, c := range []*client.Client{leaver, revoked} {
		ms, _ := history(ctx, c, chat)
		for _, m := range ms {
			if slices.Contains(final, string(m.Body)) {
				rep.SeenAfterRemoval++
			}
		}
	}
	// The server never held a text in the clear.
	w.mu.Lock()
	hits, err := canary.Scan(canary.Sources{Dirs: []string{w.data}, Files: []string{w.logPath}}, append(slices.Clone(sent), final...))
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	for _, h := range hits {
		logf("chaos: the server holds plaintext: %s", h)
	}
	rep.PlaintextHits = len(hits)
	return nil
}

// history returns a chat's text messages on c, oldest first.
func history(ctx context.Context, c *client.Client, chat client.ChatID) ([]*store.Message, error) {
	var all []*store.Message
	q := store.HistoryQuery{Limit: store.MaxPageSize}
	for range 1000 {
		page, err := c.History(ctx, chat, q)
		if err != nil {
			return nil, err
		}
		all = append(slices.Clone(page.Messages), all...)
		if !page.More || len(page.Messages) == 0 {
			break
		}
		q.Before = page.Messages[0].Position
	}
	var out []*store.Message
	for _, m := range all {
		if m.Kind == store.KindText {
			out = append(out, m)
		}
	}
	return out, nil
}

// figures are what check counts.
type figures struct {
	lost, dup, pending, misordered int
}

// check compares every device's view of the chat: stable devices must hold
// every sent and final message, late devices (joiner, linked) every final
// message; nothing twice, everything ordered by the server, and the same
// order everywhere (stable devices' lists are equal; a late device's list
// is the reference list restricted to what it holds).
func check(ctx context.Context, chat client.ChatID, stable, late []*client.Client, sent, final []string) figures {
	var f figures
	views := make([][]*store.Message, 0, len(stable)+len(late))
	for _, c := range append(slices.Clone(stable), late...) {
		ms, err := history(ctx, c, chat)
		if err != nil {
			f.lost += len(sent) + len(final)
			ms = nil
		}
		views = append(views, ms)
	}
	ref := views[0]
	pos := make(map[store.MessageID]int, len(ref))
	for i, m := range ref {
		pos[m.ID] = i
	}
	for v, ms := range views {
		seen := make(map[string]bool, len(ms))
		last := -1
		for _, m := range ms {
			body := string(m.Body)
			if seen[body] {
				f.dup++
			}
			seen[body] = true
			if m.Seq == 0 {
				f.pending++
			}
			p, ok := pos[m.ID]
			if !ok || p <= last {
				f.misordered++
			}
			if ok {
				last = p
			}
		}
		want := final
		if v < len(stable) {
			want = append(slices.Clone(sent), final...)
			if len(ms) != len(ref) {
				f.misordered++
			}
		}
		for _, x := range want {
			if !seen[x] {
				f.lost++
			}
		}
	}
	return f
}
