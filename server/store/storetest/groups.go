package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
)

// newGroup creates a group owned by creator.
func newGroup(t testing.TB, s store.Store, id string, creator store.DeviceRef) store.GroupID {
	t.Helper()
	g := store.GroupID(id)
	noErr(t, "CreateGroup", s.CreateGroup(context.Background(), g, creator, at(1)))
	return g
}

// addMembers commits at the given epoch, adding devs.
func addMembers(t testing.TB, s store.Store, g store.GroupID, sender store.DeviceRef, epoch uint64, devs ...store.DeviceRef) uint64 {
	t.Helper()
	seq, err := s.AppendCommit(context.Background(), store.Commit{Group: g, ID: msgID("add", int(epoch)), Epoch: epoch,
		Sender: sender, Data: []byte("commit"), At: at(2), Added: devs})
	noErr(t, "AppendCommit(add)", err)
	return seq
}

func app(g store.GroupID, sender store.DeviceRef, epoch uint64, n int) store.Message {
	return store.Message{Group: g, ID: msgID("app", n), Epoch: epoch, Kind: store.KindApplication,
		Sender: sender, Data: []byte(fmt.Sprintf("ciphertext %d", n)), At: at(10 + n)}
}

func testGroups(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 2)
	b := newAccount(t, s, "bob", 1)
	g := newGroup(t, s, "\x00group\xff", a.ref(0)) // arbitrary bytes

	wantErr(t, "CreateGroup twice", s.CreateGroup(ctx, g, b.ref(0), at(2)), store.ErrExists)
	wantErr(t, "CreateGroup empty id", s.CreateGroup(ctx, "", a.ref(0), at(2)), store.ErrInvalid)
	wantErr(t, "CreateGroup long id", s.CreateGroup(ctx, store.GroupID(bytes.Repeat([]byte{1}, 256)), a.ref(0), at(2)), store.ErrInvalid)
	wantErr(t, "CreateGroup unknown creator", s.CreateGroup(ctx, "g2", firstDevice(newAccountValue("x"), "x").Ref(), at(2)), store.ErrNotFound)

	got, err := s.Group(ctx, g)
	noErr(t, "Group", err)
	if got.ID != g || got.Epoch != 0 || got.LastSeq != 0 {
		t.Fatalf("Group = %+v", got)
	}
	sameTime(t, "Group.CreatedAt", got.CreatedAt, at(1))
	_, err = s.Group(ctx, "nope")
	wantErr(t, "Group(unknown)", err, store.ErrNotFound)

	m, err := s.Member(ctx, g, a.ref(0))
	noErr(t, "Member(creator)", err)
	if m.JoinedSeq != 0 || m.AckedSeq != 0 {
		t.Fatalf("creator = %+v", m)
	}
	_, err = s.Member(ctx, g, b.ref(0))
	wantErr(t, "Member(non-member)", err, store.ErrNotMember)
	_, err = s.Member(ctx, "nope", b.ref(0))
	wantErr(t, "Member(unknown group)", err, store.ErrNotFound)
	_, err = s.Members(ctx, "nope")
	wantErr(t, "Members(unknown group)", err, store.ErrNotFound)

	seq := addMembers(t, s, g, a.ref(0), 0, b.ref(0), a.ref(1))
	members, err := s.Members(ctx, g)
	noErr(t, "Members", err)
	if len(members) != 3 {
		t.Fatalf("Members = %+v, want 3", members)
	}
	for _, m := range members {
		want := seq
		if m.Device == a.ref(0) {
			want = 0
		}
		if m.JoinedSeq != want || m.AckedSeq != want {
			t.Fatalf("member %+v: joined/acked want %d", m, want)
		}
	}

	g2 := newGroup(t, s, "second", b.ref(0))
	ms, err := s.Memberships(ctx, b.ref(0))
	noErr(t, "Memberships", err)
	if len(ms) != 2 {
		t.Fatalf("Memberships = %+v, want 2 groups", ms)
	}
	byGroup := map[store.GroupID]store.Membership{}
	for _, m := range ms {
		byGroup[m.Group] = m
	}
	if m := byGroup[g]; m.AckedSeq != seq || m.LastSeq != seq {
		t.Fatalf("membership in %q = %+v", g, m)
	}
	if m := byGroup[g2]; m.AckedSeq != 0 || m.LastSeq != 0 {
		t.Fatalf("membership in %q = %+v", g2, m)
	}
}

func testAppendMessage(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 1)
	g := newGroup(t, s, "g", a.ref(0))

	for i := 1; i <= 3; i++ {
		seq, err := s.AppendMessage(ctx, app(g, a.ref(0), 0, i))
		noErr(t, "AppendMessage", err)
		if seq != uint64(i) {
			t.Fatalf("seq = %d, want %d", seq, i)
		}
	}
	// A resend with the same id returns the original seq and stores nothing.
	m := app(g, a.ref(0), 0, 2)
	m.Data = []byte("different bytes")
	seq, err := s.AppendMessage(ctx, m)
	noErr(t, "AppendMessage resend", err)
	if seq != 2 {
		t.Fatalf("resend seq = %d, want 2", seq)
	}
	if gr, _ := s.Group(ctx, g); gr.LastSeq != 3 {
		t.Fatalf("LastSeq after resend = %d, want 3", gr.LastSeq)
	}

	_, err = s.AppendMessage(ctx, app(g, b.ref(0), 0, 9))
	wantErr(t, "non-member sends", err, store.ErrNotMember)
	_, err = s.AppendMessage(ctx, app("nope", a.ref(0), 0, 9))
	wantErr(t, "unknown group", err, store.ErrNotFound)
	bad := app(g, a.ref(0), 0, 9)
	bad.Kind = store.KindCommit
	_, err = s.AppendMessage(ctx, bad)
	wantErr(t, "commit through AppendMessage", err, store.ErrInvalid)
	bad = app(g, a.ref(0), 0, 9)
	bad.At = time.Time{}
	_, err = s.AppendMessage(ctx, bad)
	wantErr(t, "message without a time", err, store.ErrInvalid)

	// Future epoch.
	_, err = s.AppendMessage(ctx, app(g, a.ref(0), 1, 9))
	wantErr(t, "future epoch", err, store.ErrEpochConflict)

	// Advance to epoch 2, then test the grace window.
	addMembers(t, s, g, a.ref(0), 0, b.ref(0))
	_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("c", 1), Epoch: 1, Sender: b.ref(0), Data: []byte("c"), At: at(3)})
	noErr(t, "second commit", err)
	old := app(g, a.ref(0), 1, 10)
	_, err = s.AppendMessage(ctx, old)
	var ee *store.EpochError
	if !errors.As(err, &ee) || !ee.Stale || ee.Current != 2 || !errors.Is(err, store.ErrEpochStale) {
		t.Fatalf("stale message: got %v, want stale EpochError at epoch 2", err)
	}
	// A resend of a stored message gets its seq even once its epoch is
	// out of the window.
	seq, err = s.AppendMessage(ctx, app(g, a.ref(0), 0, 2))
	if err != nil || seq != 2 {
		t.Fatalf("resend after the epoch moved on: seq %d, %v; want 2", seq, err)
	}
	old.EpochGrace = 1
	_, err = s.AppendMessage(ctx, old)
	noErr(t, "message within grace", err)
	prop := app(g, b.ref(0), 2, 11)
	prop.Kind = store.KindProposal
	seq, err = s.AppendMessage(ctx, prop)
	noErr(t, "proposal", err)
	if seq != 7 {
		t.Fatalf("proposal seq = %d, want 7", seq)
	}
}

func testAppendCommit(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 2)
	c := newAccount(t, s, "carol", 1)
	g := newGroup(t, s, "g", a.ref(0))

	commit := store.Commit{Group: g, ID: msgID("commit", 0), Epoch: 0, Sender: a.ref(0), Data: []byte("commit 0"), At: at(5),
		Added: []store.DeviceRef{b.ref(0), b.ref(1)},
		Welcomes: []store.MailboxMessage{
			{To: b.ref(0), ID: msgID("welcome", 0), Data: []byte("welcome b0"), At: at(5)},
			{To: b.ref(1), ID: msgID("welcome", 1), Data: []byte("welcome b1")}, // takes the commit's time
		}}
	seq, err := s.AppendCommit(ctx, commit)
	noErr(t, "AppendCommit", err)
	if seq != 1 {
		t.Fatalf("commit seq = %d, want 1", seq)
	}
	gr, _ := s.Group(ctx, g)
	if gr.Epoch != 1 || gr.LastSeq != 1 {
		t.Fatalf("group after commit = %+v, want epoch 1 seq 1", gr)
	}
	for i := 0; i < 2; i++ {
		box, err := s.ReadMailbox(ctx, b.ref(i), 0, 10)
		noErr(t, "ReadMailbox", err)
		if len(box) != 1 || box[0].Kind != store.MailWelcome || string(box[0].Data) != fmt.Sprintf("welcome b%d", i) ||
			box[0].ID != msgID("welcome", i) {
			t.Fatalf("mailbox of b%d = %+v", i, box)
		}
		sameTime(t, "Welcome.CreatedAt", box[0].CreatedAt, at(5))
		m, err := s.Member(ctx, g, b.ref(i))
		noErr(t, "Member(added)", err)
		if m.JoinedSeq != 1 || m.AckedSeq != 1 {
			t.Fatalf("added member = %+v, want joined at 1", m)
		}
	}

	// A resend of the same commit changes nothing and returns its seq.
	seq, err = s.AppendCommit(ctx, commit)
	noErr(t, "AppendCommit resend", err)
	if seq != 1 {
		t.Fatalf("resend seq = %d", seq)
	}
	if gr, _ := s.Group(ctx, g); gr.Epoch != 1 {
		t.Fatalf("epoch after resend = %d", gr.Epoch)
	}
	if n, _ := s.MailboxDepth(ctx, b.ref(0)); n != 1 {
		t.Fatalf("welcome queued again: depth %d", n)
	}

	// A commit for an old epoch loses, with the current epoch in the error.
	_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("late", 0), Epoch: 0, Sender: b.ref(0), Data: []byte("late"), At: at(6)})
	var ee *store.EpochError
	if !errors.As(err, &ee) || ee.Current != 1 || !errors.Is(err, store.ErrEpochConflict) {
		t.Fatalf("old-epoch commit: got %v, want EpochError{Current: 1}", err)
	}
	_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("x", 0), Epoch: 1, Sender: c.ref(0), Data: []byte("x"), At: at(6)})
	wantErr(t, "commit by non-member", err, store.ErrNotMember)

	// Adding a revoked device is refused and changes nothing.
	noErr(t, "RevokeDevice", s.RevokeDevice(ctx, c.ref(0), at(7)))
	_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("addc", 0), Epoch: 1, Sender: a.ref(0), Data: []byte("x"), At: at(8),
		Added: []store.DeviceRef{c.ref(0)}})
	wantErr(t, "add revoked device", err, store.ErrRevoked)
	if gr, _ := s.Group(ctx, g); gr.Epoch != 1 || gr.LastSeq != 1 {
		t.Fatalf("group changed by refused commit: %+v", gr)
	}

	// Removal of a device that has been sending.
	_, err = s.AppendMessage(ctx, app(g, b.ref(1), 1, 0))
	noErr(t, "AppendMessage by b1", err)
	seq, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("remove", 0), Epoch: 1, Sender: b.ref(0), Data: []byte("rm"), At: at(9),
		Removed: []store.DeviceRef{b.ref(1)}})
	noErr(t, "remove commit", err)
	if seq != 3 {
		t.Fatalf("remove seq = %d, want 3", seq)
	}
	_, err = s.Member(ctx, g, b.ref(1))
	wantErr(t, "removed member", err, store.ErrNotMember)
	_, err = s.AppendMessage(ctx, app(g, b.ref(1), 2, 1))
	wantErr(t, "removed member sends", err, store.ErrNotMember)
	if seq, err := s.AppendMessage(ctx, app(g, b.ref(1), 1, 0)); err != nil || seq != 2 {
		t.Fatalf("resend by a removed member of a stored message: seq %d, %v; want 2", seq, err)
	}
	_, err = s.AppendCommit(ctx, store.Commit{Group: "nope", ID: msgID("n", 0), Epoch: 0, Sender: a.ref(0), Data: []byte("x"), At: at(9)})
	wantErr(t, "commit to unknown group", err, store.ErrNotFound)
	_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("n", 1), Epoch: 2, Sender: a.ref(0), Data: []byte("x")})
	wantErr(t, "commit without a time", err, store.ErrInvalid)
}

// testCommitRace: 10 members commit for the same epoch at once; exactly one
// wins, the others get ErrEpochConflict carrying the new epoch.
func testCommitRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 10
	owner := newAccount(t, s, "owner", 1)
	g := newGroup(t, s, "race", owner.ref(0))
	var devs []store.DeviceRef
	for i := 0; i < n; i++ {
		devs = append(devs, newAccount(t, s, fmt.Sprintf("member%d", i), 1).ref(0))
	}
	addMembers(t, s, g, owner.ref(0), 0, devs...)

	for round := 0; round < 3; round++ {
		epoch := uint64(1 + round)
		var wg sync.WaitGroup
		results := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, results[i] = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID(fmt.Sprintf("race%d", round), i),
					Epoch: epoch, Sender: devs[i], Data: []byte("commit"), At: at(20)})
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range results {
			var ee *store.EpochError
			switch {
			case err == nil:
				wins++
			case errors.As(err, &ee) && errors.Is(err, store.ErrEpochConflict) && ee.Current == epoch+1:
			default:
				t.Fatalf("round %d: unexpected result %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d commits won, want exactly 1", round, wins)
		}
		if gr, _ := s.Group(ctx, g); gr.Epoch != epoch+1 || gr.LastSeq != epoch+1 {
			t.Fatalf("round %d: group = %+v", round, gr)
		}
	}
}

// testMixedWorkload interleaves appends, acks and commits on one group from
// many goroutines, so that they share transactions, and checks that the
// log, the epoch and the cursors stay consistent.
func testMixedWorkload(t *testing.T, s store.Store) {
	ctx := context.Background()
	const senders, perSender, commits = 8, 30, 5
	owner := newAccount(t, s, "owner", 1)
	g := newGroup(t, s, "mixed", owner.ref(0))
	var devs []store.DeviceRef
	for i := 0; i < senders; i++ {
		devs = append(devs, newAccount(t, s, fmt.Sprintf("sender%d", i), 1).ref(0))
	}
	addMembers(t, s, g, owner.ref(0), 0, devs...)

	var wg sync.WaitGroup
	errs := make(chan error, senders*perSender+commits)
	for i, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perSender; n++ {
				m := app(g, dev, 0, i*perSender+n)
				m.EpochGrace = commits + 1
				seq, err := s.AppendMessage(ctx, m)
				if err != nil {
					errs <- fmt.Errorf("AppendMessage: %w", err)
					return
				}
				// Acknowledging what one just stored must always work.
				if err := s.AckGroup(ctx, dev, g, seq); err != nil {
					errs <- fmt.Errorf("AckGroup(%d): %w", seq, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := 0; c < commits; {
			gr, err := s.Group(ctx, g)
			if err != nil {
				errs <- err
				return
			}
			_, err = s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("mixed-commit", c), Epoch: gr.Epoch,
				Sender: owner.ref(0), Data: []byte("c"), At: at(30)})
			switch {
			case err == nil:
				c++
			case !errors.Is(err, store.ErrEpochConflict):
				errs <- fmt.Errorf("AppendCommit: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	gr, err := s.Group(ctx, g)
	noErr(t, "Group", err)
	want := uint64(1 + senders*perSender + commits)
	if gr.LastSeq != want || gr.Epoch != 1+commits {
		t.Fatalf("group = %+v, want last seq %d at epoch %d", gr, want, 1+commits)
	}
	entries := 0
	for after := uint64(0); ; {
		page, err := s.ReadGroup(ctx, g, after, 100)
		noErr(t, "ReadGroup", err)
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			entries++
			if e.Seq != uint64(entries) {
				t.Fatalf("entry %d has seq %d", entries, e.Seq)
			}
		}
		after = page[len(page)-1].Seq
	}
	if uint64(entries) != want {
		t.Fatalf("%d entries in the log, want %d", entries, want)
	}
	// A message appended now gets the next seq, and can be acknowledged.
	seq, err := s.AppendMessage(ctx, app(g, devs[0], 1+commits, 9999))
	noErr(t, "AppendMessage", err)
	if seq != want+1 {
		t.Fatalf("next seq = %d, want %d", seq, want+1)
	}
	noErr(t, "AckGroup", s.AckGroup(ctx, devs[0], g, seq))
}

// testAppendVisible checks Message.Visible: called before AppendMessage
// returns, with the seq it returns, when the entry is already readable;
// with the stored copy's seq for a resend; never for a refused message.
func testAppendVisible(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 1)
	g := newGroup(t, s, "g", a.ref(0))
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []uint64
			var readable bool
			m := app(g, a.ref(0), 0, i)
			m.Visible = func(seq uint64) {
				got = append(got, seq)
				es, err := s.ReadGroup(ctx, g, seq-1, 1)
				readable = err == nil && len(es) == 1 && es[0].ID == m.ID
			}
			seq, err := s.AppendMessage(ctx, m)
			switch {
			case err != nil:
				errs <- err
			case len(got) != 1 || got[0] != seq:
				errs <- fmt.Errorf("message %d: Visible got %v, AppendMessage returned seq %d", i, got, seq)
			case !readable:
				errs <- fmt.Errorf("message %d: not readable when Visible was called", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var got []uint64
	resend := app(g, a.ref(0), 0, 7)
	resend.Visible = func(seq uint64) { got = append(got, seq) }
	seq, err := s.AppendMessage(ctx, resend)
	noErr(t, "resend", err)
	if len(got) != 1 || got[0] != seq {
		t.Fatalf("resend: Visible got %v, AppendMessage returned seq %d", got, seq)
	}
	refused := app(g, b.ref(0), 0, 99)
	refused.Visible = func(seq uint64) { t.Errorf("Visible(%d) called for a refused message", seq) }
	_, err = s.AppendMessage(ctx, refused)
	wantErr(t, "non-member sends", err, store.ErrNotMember)
}

// testAppendAsync checks store.AsyncAppender, if the store has it: done is
// called exactly once per append with AppendMessage's result, after
// Visible, and the appends are stored.
func testAppendAsync(t *testing.T, s store.Store) {
	as, ok := s.(store.AsyncAppender)
	if !ok {
		t.Skip("the store appends synchronously only")
	}
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 1)
	g := newGroup(t, s, "g", a.ref(0))
	const n = 200
	type result struct {
		i, calls    int
		seq         uint64
		err         error
		visibleSeqs []uint64
	}
	results := make(chan *result, 2*n+2)
	var mu sync.Mutex // guards the results while callbacks run
	start := func(i int, m store.Message) {
		r := &result{i: i}
		m.Visible = func(seq uint64) {
			mu.Lock()
			r.visibleSeqs = append(r.visibleSeqs, seq)
			mu.Unlock()
		}
		as.AppendMessageAsync(m, func(seq uint64, err error) {
			mu.Lock()
			r.calls++
			r.seq, r.err = seq, err
			mu.Unlock()
			results <- r
		})
	}
	for i := 1; i <= n; i++ {
		start(i, app(g, a.ref(0), 0, i))
	}
	start(7, app(g, a.ref(0), 0, 7))     // a resend
	start(-1, app(g, b.ref(0), 0, 1000)) // not a member
	bad := app(g, a.ref(0), 0, 1001)
	bad.At = time.Time{}
	start(-2, bad) // invalid: refused before it is queued
	seqs := map[uint64]int{}
	var resendSeq uint64
	for range n + 3 {
		var r *result
		select {
		case r = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("an asynchronous append was never completed")
		}
		mu.Lock()
		calls, seq, err, vis := r.calls, r.seq, r.err, r.visibleSeqs
		mu.Unlock()
		switch {
		case calls != 1:
			t.Fatalf("append %d: done called %d times", r.i, calls)
		case r.i == -1:
			wantErr(t, "non-member sends", err, store.ErrNotMember)
		case r.i == -2:
			wantErr(t, "message without a time", err, store.ErrInvalid)
		case err != nil:
			t.Fatalf("append %d: %v", r.i, err)
		case len(vis) != 1 || vis[0] != seq:
			t.Fatalf("append %d: Visible got %v, done got seq %d", r.i, vis, seq)
		case r.i == 7 && seqs[seq] == 7:
			resendSeq = seq
		case seqs[seq] != 0:
			t.Fatalf("appends %d and %d both got seq %d", seqs[seq], r.i, seq)
		default:
			seqs[seq] = r.i
		}
		if r.i < 0 && len(vis) != 0 {
			t.Fatalf("append %d refused, but Visible was called", r.i)
		}
	}
	gr, err := s.Group(ctx, g)
	noErr(t, "Group", err)
	if gr.LastSeq != n || len(seqs) != n {
		t.Fatalf("after %d async appends: last seq %d, %d distinct seqs", n, gr.LastSeq, len(seqs))
	}
	// The resend and the original, in either order, got the same seq.
	if resendSeq == 0 {
		t.Fatal("the resend of message 7 did not get the original's seq")
	}
	es, err := s.ReadGroup(ctx, g, resendSeq-1, 1)
	noErr(t, "ReadGroup", err)
	if len(es) != 1 || es[0].ID != msgID("app", 7) {
		t.Fatalf("entry at the resend's seq %d: %+v", resendSeq, es)
	}
}
