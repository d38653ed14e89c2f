package sqlite

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

// crashDirEnv tells a re-executed test binary to act as the crash child.
const crashDirEnv = "PARLEY_STORE_CRASH_DIR"

var (
	crashKey    = []byte("durability test account key 0032")
	crashDevice = store.DeviceRef{Account: identity.AccountIDFromKey(crashKey), Device: identity.DeviceID{1}}
	crashGroup  = store.GroupID("durability")
	crashTime   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TestDurabilityChild is the child process of TestDurability: it appends to
// a group log and a mailbox from many goroutines and prints every write the
// store acknowledged, until it is killed.
func TestDurabilityChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as the child of TestDurability")
	}
	ctx := context.Background()
	s, err := Open(ctx, dir, store.Options{MailboxLimit: 1 << 30})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	acct := store.Account{ID: crashDevice.Account, PublicKey: crashKey, CreatedAt: crashTime}
	dev := store.Device{Account: acct.ID, ID: crashDevice.Device, Certificate: []byte("c"), SigningKey: []byte("k"), CreatedAt: crashTime}
	if err := s.CreateAccount(ctx, store.NewAccount{Account: acct, FirstDevice: dev}); err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := s.CreateGroup(ctx, crashGroup, crashDevice, crashTime); err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateGroup: %v", err)
	}
	var out sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	report := func(kind string, seq uint64, id store.MessageID) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(w, "%s %d %x ok\n", kind, seq, id[:])
		_ = w.Flush()
	}
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var id store.MessageID
				_, _ = rand.Read(id[:])
				if i%4 == 3 {
					seq, err := s.Deliver(ctx, store.MailboxMessage{To: crashDevice, ID: id, Kind: store.MailOther, Data: id[:], At: crashTime})
					if err != nil {
						fmt.Fprintln(os.Stderr, "Deliver:", err)
						os.Exit(3)
					}
					report("mail", seq, id)
					continue
				}
				seq, err := s.AppendMessage(ctx, store.Message{Group: crashGroup, ID: id, Kind: store.KindApplication,
					Sender: crashDevice, Data: id[:], At: crashTime})
				if err != nil {
					fmt.Fprintln(os.Stderr, "AppendMessage:", err)
					os.Exit(3)
				}
				report("log", seq, id)
			}
		}()
	}
	wg.Wait()
}

// TestDurability kills a writing child process with SIGKILL, several times,
// and checks after each kill that every write the child saw acknowledged is
// in the reopened database.
func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	type ack struct {
		kind string
		seq  uint64
		id   string
	}
	var acked []ack
	for cycle := 0; cycle < 3; cycle++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[3] != "ok" {
				continue // a line cut by the kill, or test framework output
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			acked = append(acked, ack{f[0], seq, f[2]})
			if n++; n == 3000 {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		if n < 3000 {
			t.Fatalf("cycle %d: child stopped after %d acks: %v", cycle, n, err)
		}
		checkAcked(t, dir, cycle, len(acked), func(yield func(kind string, seq uint64, id string)) {
			for _, a := range acked {
				yield(a.kind, a.seq, a.id)
			}
		})
	}
}

// checkAcked reopens the store and checks every acknowledged write.
func checkAcked(t *testing.T, dir string, cycle, n int, each func(func(kind string, seq uint64, id string))) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer s.Close()
	stored := map[string]string{}
	for after := uint64(0); ; {
		page, err := s.ReadGroup(ctx, crashGroup, after, store.MaxReadLimit)
		if err != nil {
			t.Fatalf("ReadGroup: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			stored["log "+strconv.FormatUint(e.Seq, 10)] = hex.EncodeToString(e.ID[:])
		}
		after = page[len(page)-1].Seq
	}
	for after := uint64(0); ; {
		page, err := s.ReadMailbox(ctx, crashDevice, after, store.MaxReadLimit)
		if err != nil {
			t.Fatalf("ReadMailbox: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			stored["mail "+strconv.FormatUint(e.Seq, 10)] = hex.EncodeToString(e.ID[:])
		}
		after = page[len(page)-1].Seq
	}
	missing := 0
	each(func(kind string, seq uint64, id string) {
		if stored[kind+" "+strconv.FormatUint(seq, 10)] != id {
			missing++
		}
	})
	if missing > 0 {
		t.Fatalf("cycle %d: %d of %d acknowledged writes missing after SIGKILL", cycle, missing, n)
	}
	t.Logf("cycle %d: all %d acknowledged writes survived (%d stored)", cycle, n, len(stored))
}
