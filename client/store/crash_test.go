package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash test runs a child process (this test binary, re-executed) that
// applies batches as fast as it can and prints "committed N" after each
// Apply returns. The parent SIGKILLs it at a random moment and checks that
// every reported batch is complete and that no batch is half there.

const (
	crashDirEnv    = "PARLEY_STORE_CRASH_DIR"
	crashPerBatch  = 16
	crashGroup     = GroupID("crash-group")
	crashMaxBatchs = 100000
	crashRounds    = 8
)

func crashBody(batch, j int) string { return fmt.Sprintf("batch %d message %d", batch, j) }

func crashMsgID(batch, j int) MessageID {
	var id MessageID
	copy(id[:], fmt.Sprintf("%08d-%06d", batch, j))
	return id
}

// TestCrashChild is the child's body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the crash test's child process")
	}
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	chat := ChatIDFromGroup(crashGroup)
	sender := newAccount(t)
	start, err := s.Cursor(ctx, GroupStream(crashGroup))
	if err != nil {
		os.Exit(2)
	}
	for batch := int(start) + 1; batch < crashMaxBatchs; batch++ {
		b := &Batch{
			Now:         time.Now(),
			GroupStates: []GroupStateUpdate{{Group: crashGroup, State: GroupState(fmt.Sprintf("state-%d", batch))}},
			Cursors:     []CursorUpdate{{Stream: GroupStream(crashGroup), Seq: uint64(batch)}, {Stream: MailboxStream, Seq: uint64(batch)}},
		}
		if batch == 1 {
			b.Conversations = []*Conversation{{ID: chat, Kind: ChatGroup, Group: crashGroup, Name: "crash"}}
		}
		for j := range crashPerBatch {
			b.Messages = append(b.Messages, &Message{
				ID: crashMsgID(batch, j), Chat: chat, Seq: uint64(batch*crashPerBatch + j), Sender: sender,
				Kind: KindText, Body: []byte(crashBody(batch, j)), State: StateReceived, SentAt: b.Now,
			})
		}
		if _, err := s.Apply(ctx, b); err != nil {
			fmt.Fprintln(os.Stderr, "apply:", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", batch)
	}
	os.Exit(0)
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts child processes")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "profile")
	s, err := Create(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	reported := 0
	for round := range crashRounds {
		last := runAndKill(t, dir, 5+rand.IntN(20))
		if last < reported {
			t.Fatalf("round %d: child reported %d after %d", round, last, reported)
		}
		reported = max(reported, last)
		checkCrashProfile(t, dir, reported)
	}
	if reported == 0 {
		t.Fatal("no batch was ever committed")
	}
	t.Logf("%d batches committed across %d kills", reported, crashRounds)
}

// runAndKill starts the child, kills it after it has reported `after`
// commits (plus a random moment), and returns the last batch it reported.
func runAndKill(t *testing.T, dir string, after int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last, seen, killed := 0, 0, false
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "committed ")
		if !ok {
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		last = v
		seen++
		if seen == after && !killed {
			// Kill at a random point of a later batch.
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v", err)
	}
	return last
}

// checkCrashProfile checks that batches 1..c are complete and nothing after c
// exists, where c is the stored cursor, and that c >= reported.
func checkCrashProfile(t *testing.T, dir string, reported int) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer s.Close()
	c, err := s.Cursor(ctx, GroupStream(crashGroup))
	if err != nil {
		t.Fatal(err)
	}
	if int(c) < reported {
		t.Fatalf("cursor %d is behind the last reported commit %d: a committed batch was lost", c, reported)
	}
	if mc, _ := s.Cursor(ctx, MailboxStream); mc != c {
		t.Fatalf("mailbox cursor %d, group cursor %d: half a batch", mc, c)
	}
	st, err := s.GroupState(ctx, crashGroup)
	if err != nil || string(st) != fmt.Sprintf("state-%d", c) {
		t.Fatalf("group state %q with cursor %d (%v): half a batch", st, c, err)
	}
	chat := ChatIDFromGroup(crashGroup)
	var after Position
	total := 0
	for {
		msgs, err := s.Scan(ctx, chat, after, MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			batch, j := int(m.Seq)/crashPerBatch, int(m.Seq)%crashPerBatch
			if batch > int(c) || m.ID != crashMsgID(batch, j) || string(m.Body) != crashBody(batch, j) {
				t.Fatalf("message seq %d (%q) does not belong with cursor %d", m.Seq, m.Body, c)
			}
			after = m.Position
		}
		total += len(msgs)
		if len(msgs) < MaxPageSize {
			break
		}
	}
	if total != int(c)*crashPerBatch {
		t.Fatalf("%d messages stored for %d batches of %d", total, c, crashPerBatch)
	}
}
