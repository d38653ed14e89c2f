package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/storetest"
)

// newStore opens a fresh store in a temporary folder.
func newStore(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir(), storetest.Options())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), b.TempDir(), storetest.BenchOptions())
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestAdminWhileServing: a second store on the same folder (as `parley
// admin invite` opens) can write while the first keeps writing, and the
// first sees its writes.
func TestAdminWhileServing(t *testing.T) {
	dir := t.TempDir()
	server := newStoreIn(t, dir)
	admin := newStoreIn(t, dir)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if err := server.CreateInvite(t.Context(), store.InviteToken(fmt.Sprintf("server-%d", i)), at); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 20; i++ {
		if err := admin.CreateInvite(t.Context(), store.InviteToken(fmt.Sprintf("admin-%d", i)), at); err != nil {
			t.Fatalf("admin CreateInvite: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("server CreateInvite: %v", err)
	}
	for i := 0; i < 20; i++ {
		if err := server.UseInvite(t.Context(), store.InviteToken(fmt.Sprintf("admin-%d", i)), at); err != nil {
			t.Fatalf("server does not see admin invite %d: %v", i, err)
		}
	}
}

// TestAdminOpenKeepsSeqs: a second store opened while the first runs (an
// admin command) must not move sequence numbers or cursors under the
// first, whose writer caches group state.
func TestAdminOpenKeepsSeqs(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	server := newStoreIn(t, dir)
	acct := store.Account{ID: identity.AccountIDFromKey(crashKey), PublicKey: crashKey, CreatedAt: at}
	dev := store.Device{Account: acct.ID, ID: crashDevice.Device, Certificate: []byte("c"), SigningKey: []byte("k"), CreatedAt: at}
	if err := server.CreateAccount(ctx, store.NewAccount{Account: acct, FirstDevice: dev}); err != nil {
		t.Fatal(err)
	}
	if err := server.CreateGroup(ctx, crashGroup, crashDevice, at); err != nil {
		t.Fatal(err)
	}
	msg := func(n byte) store.Message {
		return store.Message{Group: crashGroup, ID: store.MessageID{n}, Kind: store.KindApplication, Sender: crashDevice, Data: []byte{n}, At: at}
	}
	if _, err := server.AppendMessage(ctx, msg(1)); err != nil {
		t.Fatal(err)
	}
	if err := server.AckGroup(ctx, crashDevice, crashGroup, 1); err != nil {
		t.Fatal(err)
	}
	admin := newStoreIn(t, dir)
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	seq, err := server.AppendMessage(ctx, msg(2))
	if err != nil || seq != 2 {
		t.Fatalf("append after an admin open: seq %d, %v; want 2", seq, err)
	}
	m, err := server.Member(ctx, crashGroup, crashDevice)
	if err != nil || m.AckedSeq != 1 {
		t.Fatalf("cursor after an admin open: %+v, %v; want 1", m, err)
	}
}

func newStoreIn(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSeqGapOnOpen: reopening advances sequence numbers by SeqGap, so a seq
// handed out before a crash is never reused, and reads continue across the
// gap.
func TestSeqGapOnOpen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acct := store.Account{ID: identity.AccountIDFromKey(crashKey), PublicKey: crashKey, CreatedAt: at}
	dev := store.Device{Account: acct.ID, ID: crashDevice.Device, Certificate: []byte("c"), SigningKey: []byte("k"), CreatedAt: at}

	s, err := Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, store.NewAccount{Account: acct, FirstDevice: dev}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(ctx, crashGroup, crashDevice, at); err != nil {
		t.Fatal(err)
	}
	msg := func(n byte) store.Message {
		return store.Message{Group: crashGroup, ID: store.MessageID{n}, Kind: store.KindApplication, Sender: crashDevice, Data: []byte{n}, At: at}
	}
	mail := func(n byte) store.MailboxMessage {
		return store.MailboxMessage{To: crashDevice, ID: store.MessageID{n}, Kind: store.MailOther, Data: []byte{n}, At: at}
	}
	if seq, err := s.AppendMessage(ctx, msg(1)); err != nil || seq != 1 {
		t.Fatalf("first append: seq %d, %v", seq, err)
	}
	if seq, err := s.Deliver(ctx, mail(1)); err != nil || seq != 1 {
		t.Fatalf("first delivery: seq %d, %v", seq, err)
	}
	if err := s.AckGroup(ctx, crashDevice, crashGroup, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The device had read everything; it still has.
	ms, err := s.Memberships(ctx, crashDevice)
	if err != nil || len(ms) != 1 || ms[0].AckedSeq != ms[0].LastSeq || ms[0].LastSeq != SeqGap+1 {
		t.Fatalf("memberships after reopen: %+v, %v", ms, err)
	}
	if seq, err := s.AppendMessage(ctx, msg(2)); err != nil || seq != SeqGap+2 {
		t.Fatalf("append after reopen: seq %d, %v; want %d", seq, err, SeqGap+2)
	}
	if seq, err := s.Deliver(ctx, mail(2)); err != nil || seq != SeqGap+2 {
		t.Fatalf("delivery after reopen: seq %d, %v; want %d", seq, err, SeqGap+2)
	}
	if seq, err := s.AppendMessage(ctx, msg(1)); err != nil || seq != 1 {
		t.Fatalf("resend of a message from before the reopen: seq %d, %v; want 1", seq, err)
	}
	log, err := s.ReadGroup(ctx, crashGroup, 1, 10)
	if err != nil || len(log) != 1 || log[0].Seq != SeqGap+2 {
		t.Fatalf("ReadGroup across the gap: %+v, %v", log, err)
	}
}
