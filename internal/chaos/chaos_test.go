package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/canary"
)

// config sizes one chaos run.
type config struct {
	// Accounts is the number of stable accounts (one device each, all
	// sending). Four more devices churn: a joiner, a leaver, a linked
	// device and a linked-then-revoked device.
	Accounts int
	// Messages is the total number of chat messages sent.
	Messages int
	// Kills is the number of server SIGKILL and restart cycles.
	Kills int
	// Traffic is over how long the messages are spread.
	Traffic time.Duration
}

// fromEnv applies the PARLEY_CHAOS_* overrides.
func fromEnv(t *testing.T, c config) config {
	for name, dst := range map[string]*int{"PARLEY_CHAOS_ACCOUNTS": &c.Accounts, "PARLEY_CHAOS_MESSAGES": &c.Messages, "PARLEY_CHAOS_KILLS": &c.Kills} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a number", name, v)
			}
			*dst = n
		}
	}
	if v := os.Getenv("PARLEY_CHAOS_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PARLEY_CHAOS_SECONDS=%q: want a number", v)
		}
		c.Traffic = time.Duration(n) * time.Second
	}
	if c.Accounts < 4 {
		c.Accounts = 4
	}
	return c
}

// TestChaosBounded is the CI run: 10 devices, 500 messages, 3 server
// kills, connections cut and delayed throughout, members joining and
// leaving, a device linked and another revoked during traffic.
func TestChaosBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run is not short")
	}
	run(t, fromEnv(t, config{Accounts: 6, Messages: 500, Kills: 3, Traffic: 12 * time.Second}))
}

// TestChaosLong is the long run: 50 devices, 10,000 messages, 20 server
// kills. It runs only with PARLEY_CHAOS=long.
func TestChaosLong(t *testing.T) {
	if os.Getenv("PARLEY_CHAOS") != "long" {
		t.Skip("set PARLEY_CHAOS=long for the long chaos run")
	}
	run(t, fromEnv(t, config{Accounts: 46, Messages: 10000, Kills: 20, Traffic: 5 * time.Minute}))
}

// world is one chaos run's servers, proxy and clients.
type world struct {
	t       *testing.T
	ctx     context.Context
	bin     string
	data    string
	logPath string
	proxy   *Proxy
	url     string

	mu   sync.Mutex
	srv  *serverProc
	wg   sync.WaitGroup
	runs map[*client.Client]context.CancelFunc
}

var opts = client.Options{KeyPackageStock: 6, MaxBackoff: 300 * time.Millisecond}

func (w *world) start(c *client.Client) {
	ctx, cancel := context.WithCancel(w.ctx)
	w.mu.Lock()
	w.runs[c] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() { defer w.wg.Done(); _ = c.Run(ctx) }()
}

func (w *world) account() *client.Client {
	w.t.Helper()
	var c *client.Client
	var err error
	for range 5 { // the proxy may cut registration short; try again
		c, err = client.Init(w.ctx, w.t.TempDir(), w.url, opts)
		if err == nil {
			break
		}
	}
	if err != nil {
		w.t.Fatalf("init: %v", err)
	}
	w.start(c)
	return c
}

// link links a new device to approver's account while the chaos goes on:
// cuts and kills do not pause, both devices reconnect on their own. Only
// NewLink (registering the throwaway mailbox) is tried again from scratch,
// as account creation is.
func (w *world) link(approver *client.Client) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(w.ctx, 3*time.Minute)
	defer cancel()
	var pl *client.PendingLink
	var err error
	for range 5 {
		if pl, err = client.NewLink(ctx, w.t.TempDir(), w.url, opts); err == nil {
			break
		}
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
	if err := <-errc; err != nil {
		c.Close()
		return nil, fmt.Errorf("approve link: %w", err)
	}
	w.start(c)
	return c, nil
}

// restart kills the server with SIGKILL, keeps it down for a moment, and
// starts it again over the same data.
func (w *world) restart(down time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.proxy.SetBackend("")
	w.srv.kill(w.t)
	w.proxy.Cut(1)
	time.Sleep(down)
	w.srv = startServer(w.t, w.bin, w.data, w.logPath)
	w.proxy.SetBackend(w.srv.addr)
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

// figures are what a run reports.
type figures struct {
	lost, dup, unordered, pending, misordered int
}

func run(t *testing.T, cfg config) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	w := &world{t: t, ctx: ctx, bin: buildBinary(t), data: t.TempDir(), runs: map[*client.Client]context.CancelFunc{}}
	w.logPath = filepath.Join(t.TempDir(), "server.log")
	p, err := NewProxy(3*time.Millisecond, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = p
	w.url = "ws://" + p.Addr() + "/v1/ws"
	w.srv = startServer(t, w.bin, w.data, w.logPath)
	p.SetBackend(w.srv.addr)
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
		w.srv.stop(t)
	}()

	stable := make([]*client.Client, cfg.Accounts)
	var wgInit sync.WaitGroup
	for i := range stable {
		wgInit.Add(1)
		go func() { defer wgInit.Done(); stable[i] = w.account() }()
	}
	wgInit.Wait()
	joiner, leaver := w.account(), w.account()
	var initial []string
	for _, c := range stable[1:] {
		initial = append(initial, addr(c))
	}
	initial = append(initial, addr(leaver))
	chat, err := stable[0].CreateGroup(ctx, "chaos", initial)
	if err != nil {
		t.Fatal(err)
	}
	waitChat := func(c *client.Client) error {
		deadline := time.Now().Add(2 * time.Minute)
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
			t.Fatal(err)
		}
	}
	// Two admins, so that membership commits come from two devices.
	if err := stable[0].SetAdmins(ctx, chat, []string{addr(stable[0]), addr(stable[1])}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !slices.Contains(stable[1].Admins(ctx, chat), stable[1].Me().AccountID); {
		if time.Now().After(deadline) {
			t.Fatal("the second admin never learned it is one")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("setup: %d accounts in the group after %v", cfg.Accounts+1, time.Since(began).Round(time.Millisecond))

	// Traffic, with chaos alongside.
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	var (
		mu    sync.Mutex
		sent  []string
		kills atomic.Int64
		cuts  atomic.Int64
	)
	perSender := cfg.Messages / cfg.Accounts
	gap := cfg.Traffic / time.Duration(max(perSender, 1))
	trafficStart := time.Now()
	var traffic sync.WaitGroup
	for i, c := range stable {
		n := perSender
		if i < cfg.Messages%cfg.Accounts {
			n++
		}
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			for j := range n {
				text := fmt.Sprintf("chaos-%s-%d-%d", hex.EncodeToString(tag), i, j)
				if _, err := c.Send(ctx, chat, text); err != nil {
					t.Errorf("send %s: %v", text, err)
					return
				}
				mu.Lock()
				sent = append(sent, text)
				mu.Unlock()
				time.Sleep(gap/2 + time.Duration(mrand.Int64N(int64(gap)+1)))
			}
		}()
	}
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(2)
	go func() { // server kills, spread over the traffic
		defer chaos.Done()
		for k := range cfg.Kills {
			at := trafficStart.Add(cfg.Traffic * time.Duration(k+1) / time.Duration(cfg.Kills+1))
			select {
			case <-stop:
				return
			case <-time.After(time.Until(at)):
			}
			w.restart(time.Duration(50+mrand.IntN(300)) * time.Millisecond)
			kills.Add(1)
		}
	}()
	go func() { // connection cuts
		defer chaos.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(150+mrand.IntN(350)) * time.Millisecond):
				cuts.Add(int64(p.Cut(0.25)))
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
		if linked, churnErr = w.link(stable[2]); churnErr != nil {
			return
		}
		at(0.6)
		if revoked, churnErr = w.link(stable[3]); churnErr != nil {
			return
		}
		at(0.75)
		churnErr = retry("revoke", func() error { return stable[3].RevokeDevice(ctx, revoked.Me().DeviceID) })
	}()
	traffic.Wait()
	<-churn
	close(stop)
	chaos.Wait()
	trafficTime := time.Since(trafficStart)
	if churnErr != nil {
		t.Fatalf("churn: %v", churnErr)
	}
	if len(sent) != cfg.Messages || kills.Load() != int64(cfg.Kills) {
		t.Fatalf("sent %d of %d messages with %d of %d kills", len(sent), cfg.Messages, kills.Load(), cfg.Kills)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Everyone still in the group sends once more; all of it must arrive.
	members := append(slices.Clone(stable), joiner, linked)
	var final []string
	for i, c := range members {
		text := fmt.Sprintf("final-%s-%d", hex.EncodeToString(tag), i)
		if _, err := c.Send(ctx, chat, text); err != nil {
			t.Fatalf("final send: %v", err)
		}
		final = append(final, text)
	}

	// Converge, then count.
	var f figures
	deadline := time.Now().Add(2*time.Minute + time.Duration(cfg.Messages)*20*time.Millisecond)
	for {
		f = check(ctx, chat, stable, []*client.Client{joiner, linked}, sent, final)
		if f == (figures{}) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	undecryptable := int64(0)
	for _, c := range append(slices.Clone(members), leaver) {
		undecryptable += c.Undecryptable()
	}
	converged := time.Since(trafficStart) - trafficTime
	t.Logf("chaos: %d devices, %d messages (+%d final), %d server kills, %d connections cut, traffic %v, converged %v after, total %v",
		len(members)+2, len(sent), len(final), kills.Load(), cuts.Load(), trafficTime.Round(time.Millisecond), converged.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Logf("chaos: lost %d, duplicated %d, undecryptable %d, not yet ordered %d, order differences %d (revoked device: %d undecryptable)",
		f.lost, f.dup, undecryptable, f.pending, f.misordered, revoked.Undecryptable())
	if f != (figures{}) || undecryptable != 0 {
		t.Errorf("chaos run failed: %+v, undecryptable %d", f, undecryptable)
	}
	// The leaver and the revoked device see nothing sent after the end.
	for _, c := range []*client.Client{leaver, revoked} {
		ms, _ := history(ctx, c, chat)
		for _, m := range ms {
			if slices.Contains(final, string(m.Body)) {
				t.Errorf("%s (removed or revoked) has %q", c.Me().AccountID, m.Body)
			}
		}
	}
	canary.Check(t, canary.Sources{Dirs: []string{w.data}, Files: []string{w.logPath}}, append(slices.Clone(sent), final...))
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
