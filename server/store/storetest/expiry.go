package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/parley-im/parley/server/store"
)

// manyLogs exceeds the number of logs or mailboxes a backend may visit in
// one expiry write (256 in server/store/internal/sqlstore), so a sweep
// must go on across writes.
const manyLogs = 300

// testExpiryMany: a sweep reaches every group log and every mailbox, also
// when there are more than one write visits, and deletes only the old
// entries.
func testExpiryMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Two accounts (an account has at most 255 devices), so the mailboxes
	// span accounts too.
	owners := []fixture{newAccount(t, s, "alice", manyLogs/2), newAccount(t, s, "bob", manyLogs/2)}
	dev := func(i int) store.DeviceRef { return owners[i%2].ref(i / 2) }
	a := owners[0]
	groups := make([]store.GroupID, manyLogs)
	var wg sync.WaitGroup
	errs := make(chan error, manyLogs)
	for i := range groups {
		groups[i] = store.GroupID(fmt.Sprintf("g%03d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				if err := s.CreateGroup(ctx, groups[i], a.ref(0), at(1)); err != nil {
					return err
				}
				for n, when := range []int{10, 30} {
					m := store.Message{Group: groups[i], ID: msgID("app", n), Kind: store.KindApplication,
						Sender: a.ref(0), Data: []byte("x"), At: at(when)}
					if _, err := s.AppendMessage(ctx, m); err != nil {
						return err
					}
					if _, err := s.Deliver(ctx, store.MailboxMessage{To: dev(i), ID: msgID("m", n),
						Kind: store.MailOther, Data: []byte("x"), At: at(when)}); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, "fill", err)
	}
	res, err := s.Expire(ctx, at(20))
	noErr(t, "Expire", err)
	if res.LogEntries != manyLogs || res.MailboxEntries != manyLogs {
		t.Fatalf("Expire = %+v, want %d and %d", res, manyLogs, manyLogs)
	}
	for i, g := range groups {
		log, err := s.ReadGroup(ctx, g, 0, 10)
		noErr(t, "ReadGroup", err)
		if len(log) != 1 || log[0].ID != msgID("app", 1) {
			t.Fatalf("group %s after expiry: %+v", g, log)
		}
		box, err := s.ReadMailbox(ctx, dev(i), 0, 10)
		noErr(t, "ReadMailbox", err)
		if len(box) != 1 || box[0].ID != msgID("m", 1) {
			t.Fatalf("mailbox %d after expiry: %+v", i, box)
		}
		if n, _ := s.MailboxDepth(ctx, dev(i)); n != 1 {
			t.Fatalf("mailbox %d depth = %d, want 1", i, n)
		}
	}
}

// testExpiryOrder: a sweep cuts each log and mailbox at its first entry
// that is not expired; an older entry behind it waits for the next sweep
// that reaches it (the documented contract of store.Expiry).
func testExpiryOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	g := newGroup(t, s, "g", a.ref(0))
	for n, when := range []int{10, 30, 15} { // the third entry's clock went back
		_, err := s.AppendMessage(ctx, store.Message{Group: g, ID: msgID("app", n), Kind: store.KindApplication,
			Sender: a.ref(0), Data: []byte("x"), At: at(when)})
		noErr(t, "AppendMessage", err)
		_, err = s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("m", n), Kind: store.MailOther,
			Data: []byte("x"), At: at(when)})
		noErr(t, "Deliver", err)
	}
	res, err := s.Expire(ctx, at(20))
	noErr(t, "Expire", err)
	if res.LogEntries != 1 || res.MailboxEntries != 1 {
		t.Fatalf("Expire = %+v, want the first entries only", res)
	}
	if log, _ := s.ReadGroup(ctx, g, 0, 10); len(log) != 2 || log[0].ID != msgID("app", 1) {
		t.Fatalf("log after expiry: %+v", log)
	}
	res, err = s.Expire(ctx, at(40))
	noErr(t, "Expire", err)
	if res.LogEntries != 2 || res.MailboxEntries != 2 {
		t.Fatalf("second Expire = %+v, want 2 and 2", res)
	}
	if n, _ := s.MailboxDepth(ctx, a.ref(0)); n != 0 {
		t.Fatalf("depth = %d, want 0", n)
	}
}
