package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

// chatNamed returns c's conversation chat, or an error naming what it has.
func chatNamed(ctx context.Context, c *client.Client, chat client.ChatID) (*client.Conversation, error) {
	convs, _, err := c.Chats(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, conv := range convs {
		if conv.ID == chat {
			return conv, nil
		}
		names = append(names, fmt.Sprintf("%q", conv.Name))
	}
	return nil, fmt.Errorf("no chat %s among %s", chat, strings.Join(names, ", "))
}

// TestArchiveUploadsConversationChanges: a conversation change that stores
// no message (a new group without members) reaches the archive through the
// background upload, even when the device restarts between the change and
// the upload; an account recovered from its words then lists the group and
// the renamed group under their current names. Unchanged conversations are
// not uploaded again.
func TestArchiveUploadsConversationChanges(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	e.account("bob")
	dir := t.TempDir()
	o := e.opts()
	o.Username = "alice"
	alice, err := client.Init(ctx, dir, e.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := alice.CreateGroup(ctx, "before", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Rename(ctx, chat, "after"); err != nil {
		t.Fatal(err)
	}
	// Sync sends the rename and uploads what changed.
	if err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything is uploaded: nothing is uploaded again.
	if res, err := alice.ArchivePending(ctx); err != nil || res != nil {
		t.Fatalf("second upload with nothing changed: %+v, %v", res, err)
	}

	// A group without members stores no message: only its conversation
	// record says it exists. The device stops before any upload.
	lonely, err := alice.CreateGroup(ctx, "lonely", nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()
	alice, err = client.Open(ctx, dir, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	e.run(alice)
	uploaded := "archive.conv." + string(lonely)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, ok, err := alice.Store().Setting(ctx, uploaded)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background upload never archived the new group")
		}
		time.Sleep(50 * time.Millisecond)
	}
	alice.Close()

	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for want, id := range map[string]client.ChatID{"after": chat, "lonely": lonely} {
		conv, err := chatNamed(ctx, rec, id)
		if err != nil {
			t.Fatalf("recovered account: %v", err)
		}
		if conv.Name != want || conv.Kind != store.ChatGroup {
			t.Fatalf("recovered chat %q (kind %v), want group %q", conv.Name, conv.Kind, want)
		}
	}
}

// TestRestoreDoesNotUploadConversationsAgain: a linked device that restored
// the account's conversations from the archive uploads none of them again,
// so its copy, made before another device renamed a group, does not beat
// the rename: an account recovered later lists the group under its new
// name.
func TestRestoreDoesNotUploadConversationsAgain(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	e.account("bob")
	o := e.opts()
	o.Username = "alice"
	alice, err := client.Init(ctx, t.TempDir(), e.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := alice.CreateGroup(ctx, "before", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// The laptop links and restores the archive; it does not sync, so it
	// does not see the rename below.
	pl, err := client.NewLink(ctx, t.TempDir(), e.srv.URL, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	req, err := client.ParseLinkCode(pl.Request().Code())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- alice.ApproveLink(ctx, req) }()
	laptop, err := pl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.RestoreHistory(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if conv, err := chatNamed(ctx, laptop, chat); err != nil || conv.Name != "before" {
		t.Fatalf("restored on the laptop: %+v %v", conv, err)
	}

	if err := alice.Rename(ctx, chat, "after"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The laptop's upload (what its background upload runs) carries no
	// conversation record: it only restored them.
	res, err := laptop.ArchivePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != nil && res.Conversations != 0 {
		t.Fatalf("the laptop uploaded %d restored conversation records again", res.Conversations)
	}
	laptop.Close()
	alice.Close()

	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	conv, err := chatNamed(ctx, rec, chat)
	if err != nil {
		t.Fatalf("recovered account: %v", err)
	}
	if conv.Name != "after" {
		t.Fatalf("recovered group named %q, want the rename made after the laptop restored (%q)", conv.Name, "after")
	}
}
