package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parley-im/parley/client"
)

// TestRecoveredHistoryNotUploadedAgain: an account recovered from its words
// restores its history from the archive and is then the account's only
// (so uploading) device; its uploads carry none of the restored messages
// again, while a message it receives afterwards is uploaded and comes back
// with the next recovery.
func TestRecoveredHistoryNotUploadedAgain(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob := e.account("alice"), e.account("bob")
	chat, err := alice.CreateGroup(ctx, "history", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	for i := range n {
		if _, err := alice.Send(ctx, chat, fmt.Sprintf("restored %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "bob has alice's messages", func() error {
		got, err := texts(ctx, bob, chat)
		if err != nil || len(got) != n {
			return fmt.Errorf("bob has %d: %v", len(got), err)
		}
		return nil
	})
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()

	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if got, err := texts(ctx, rec, chat); err != nil || len(got) != n {
		t.Fatalf("recovered %d messages: %v", len(got), err)
	}
	// What the background upload runs: no restored message goes up again
	// (only the self chat the recovery made, a conversation record).
	res, err := rec.ArchivePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != nil && res.Records != 0 {
		t.Fatalf("the recovered device uploaded %d records again (%d segments, %d bytes)", res.Records, res.Segments, res.Bytes)
	}
	if res, err := rec.ArchivePending(ctx); err != nil || res != nil {
		t.Fatalf("second upload with nothing changed: %+v %v", res, err)
	}

	// A message received after the restore is uploaded (Sync uploads what
	// it stored).
	if _, err := bob.Send(ctx, chat, "after the recovery"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recovered device receives bob's message", func() error {
		if err := rec.Sync(ctx); err != nil {
			return err
		}
		got, err := texts(ctx, rec, chat)
		if err != nil || !slices.Contains(got, "after the recovery") {
			return fmt.Errorf("recovered device has %d messages: %v", len(got), err)
		}
		return nil
	})
	if res, err := rec.ArchivePending(ctx); err != nil || res != nil {
		t.Fatalf("Sync left the received message unuploaded: %+v %v", res, err)
	}
	rec.Close()
	again, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := texts(ctx, again, chat)
	if err != nil || len(got) != n+1 || got[n] != "after the recovery" {
		t.Fatalf("second recovery has %d messages (%v): %v", len(got), err, got[max(0, len(got)-2):])
	}
}
