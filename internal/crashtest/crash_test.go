package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/serverproc"
	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire/wireclient"
)

// cycles is the number of kill/restart cycles of this run.
func cycles(t *testing.T) int {
	if v := os.Getenv("PARLEY_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			t.Fatalf("PARLEY_CRASH_CYCLES=%q: want a number from 1 to 10000", v)
		}
		return n
	}
	switch {
	case os.Getenv("CI") == "true":
		return 20
	case testing.Short():
		return 1
	}
	return 3
}

func seed(t *testing.T) uint64 {
	if v := os.Getenv("PARLEY_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PARLEY_CRASH_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// group is a conversation of the test: its id, members and senders.
type group struct {
	id      []byte
	members []*device
	senders []*device
}

// TestSIGKILL kills `parley serve` with SIGKILL while clients send (to two
// groups and to a device mailbox), restarts it on the same data directory,
// and checks that every message the server acknowledged reaches every other
// member device (or the mailbox owner), that nothing arrives that was not
// sent, and that every redelivery carries the id (and, for group messages,
// the log position) of the first delivery, so clients can drop it.
func TestSIGKILL(t *testing.T) {
	n := cycles(t)
	sd := seed(t)
	rng := rand.New(rand.NewPCG(sd, sd>>32|1))
	t.Logf("%d kill/restart cycles, PARLEY_CRASH_SEED=%d", n, sd)

	bin := buildBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "server.log")
	srv := startServer(t, bin, data, logPath)
	ep := &endpoint{url: srv.URL()}
	defer func() {
		if t.Failed() {
			t.Logf("server log (end):\n%s", serverproc.Tail(logPath))
		}
	}()

	// Five accounts; a pair conversation and a three-member one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	names := []string{"alice", "bob", "carol", "dave", "erin"}
	devs := map[string]*device{}
	for _, name := range names {
		a := ts.NewIdentity(t)
		dv := newDevice(name, a.Devices[0])
		c, err := wireclient.Dial(ctx, ep.get(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Hello(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Register(ctx, a.Key.Public(), a.Devices[0].Cert, ""); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		c.CloseNow()
		devs[name] = dv
	}
	groups := []*group{
		{id: []byte("crash-pair"), members: []*device{devs["alice"], devs["bob"]}, senders: []*device{devs["alice"], devs["bob"]}},
		{id: []byte("crash-three"), members: []*device{devs["carol"], devs["dave"], devs["erin"]}, senders: []*device{devs["carol"], devs["dave"]}},
	}
	for _, g := range groups {
		owner := g.members[0]
		c, err := owner.connect(ctx, ep.get())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreateGroup(ctx, g.id); err != nil {
			t.Fatal(err)
		}
		var added []*ts.Device
		for _, m := range g.members[1:] {
			added = append(added, m.d)
		}
		if _, err := ts.Commit(ctx, c, g.id, 0, []byte("commit"), []byte("welcome"), added, nil); err != nil {
			t.Fatalf("commit: %v", err)
		}
		c.CloseNow()
		for _, m := range g.members {
			m.groups[string(g.id)] = true
		}
	}

	// Devices stay connected through every restart; senders send all along.
	runCtx, stopRun := context.WithCancel(ctx)
	var runWG sync.WaitGroup
	for _, dv := range devs {
		runWG.Add(1)
		go func() { defer runWG.Done(); dv.run(runCtx, ep) }()
	}
	defer func() { stopRun(); runWG.Wait() }()

	rec := &ledger{attempted: map[msgID]*device{}, acked: map[msgID]string{}, ackedBy: map[msgID]*device{}, resent: map[msgID]bool{}}
	const perSender = 4 // sends in flight per sending device
	var senders []*sender
	for _, g := range groups {
		for _, d := range g.senders {
			senders = append(senders, &sender{dev: d, group: g.id, epoch: 1, rec: rec, retry: make(chan msgID, perSender)})
		}
	}
	// And one device writes into another's mailbox (the Welcome path).
	senders = append(senders, &sender{dev: devs["erin"], to: devs["alice"], rec: rec, retry: make(chan msgID, perSender)})
	sendCtx, stopSend := context.WithCancel(runCtx)
	var sendWG sync.WaitGroup
	sendFailed := make(chan error, 1)
	fail := func(err error) {
		select {
		case sendFailed <- err:
			stopSend()
		default:
		}
	}
	for _, s := range senders {
		for range perSender {
			sendWG.Add(1)
			go func() { defer sendWG.Done(); s.loop(sendCtx, fail) }()
		}
	}

	// waitProgress waits until the server has acknowledged more sends.
	waitProgress := func(what string, more int) {
		t.Helper()
		target := rec.ackedCount() + more
		deadline := time.Now().Add(20 * time.Second)
		for rec.ackedCount() < target {
			select {
			case err := <-sendFailed:
				t.Fatalf("a send failed: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than %d sends acknowledged within 20s", what, more)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	start := time.Now()
	for i := range n {
		waitProgress(fmt.Sprintf("cycle %d", i+1), 20)
		time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		srv = startServer(t, bin, data, logPath)
		ep.set(srv.URL())
	}
	waitProgress("after the last restart", 20)
	stopSend()
	sendWG.Wait()
	select {
	case err := <-sendFailed:
		t.Fatalf("a send failed: %v", err)
	default:
	}
	// Ids whose send failed in a crash are sent again (same id) until the
	// server answers: every id tried ends up acknowledged.
	drainCtx, cancelDrain := context.WithTimeout(runCtx, 30*time.Second)
	for _, s := range senders {
		if err := s.drain(drainCtx); err != nil {
			t.Fatalf("resend: %v", err)
		}
	}
	cancelDrain()

	// Wait for every acknowledged message to reach every other member.
	missing := func() (int, string) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		count, example := 0, ""
		for id, where := range rec.acked {
			name, ok := strings.CutPrefix(where, mailbox)
			if !ok {
				continue
			}
			m := devs[name]
			m.mu.Lock()
			if _, ok := m.got[id]; !ok {
				count++
				if example == "" {
					example = fmt.Sprintf("%x to %s's mailbox", id, name)
				}
			}
			m.mu.Unlock()
		}
		for _, g := range groups {
			for _, m := range g.members {
				m.mu.Lock()
				for id, gid := range rec.acked {
					if gid != string(g.id) || rec.ackedBy[id] == m {
						continue
					}
					if _, ok := m.got[id]; !ok {
						count++
						if example == "" {
							example = fmt.Sprintf("%x to %s", id, m.name)
						}
					}
				}
				m.mu.Unlock()
			}
		}
		return count, example
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lost, example := missing()
		if lost == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged deliveries never arrived (e.g. %s)", lost, example)
		}
		// A hole left by a push lost in a crash is filled by a Fetch.
		for _, dv := range devs {
			if c, err := dv.client(drainCtx); err == nil {
				_ = dv.fetchAll(runCtx, c)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	rec.mu.Lock()
	attempted, acked, resent := len(rec.attempted), len(rec.acked), len(rec.resent)
	toMailbox := 0
	for _, where := range rec.acked {
		if strings.HasPrefix(where, mailbox) {
			toMailbox++
		}
	}
	rec.mu.Unlock()
	if toMailbox == 0 || toMailbox == acked {
		t.Errorf("%d of %d acknowledged messages went to the mailbox; the test needs both kinds", toMailbox, acked)
	}
	if acked != attempted {
		t.Errorf("%d ids tried, %d acknowledged after resending", attempted, acked)
	}
	again := 0
	for _, dv := range devs {
		dv.mu.Lock()
		for _, p := range dv.problems {
			t.Error(p)
		}
		for id := range dv.got {
			if _, ok := rec.attempted[id]; !ok {
				t.Errorf("%s received message %x that nobody sent", dv.name, id)
			}
		}
		again += dv.again
		dv.mu.Unlock()
	}
	t.Logf("%d cycles in %v: %d messages acknowledged and delivered (%d of them to a mailbox), %d resent after a crash; %d deliveries of an id already received (pushes, refetches, redeliveries), each with the same data and, in groups, the same log position",
		n, time.Since(start).Round(time.Millisecond), acked, toMailbox, resent, again)

	stopRun()
	runWG.Wait()
	if err := srv.Stop(); err != nil {
		t.Error(err)
	}
}
