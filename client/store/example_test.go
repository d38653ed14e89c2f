package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// Example shows a profile's life: create it, store what one fetched page
// of server input produced in one atomic batch, and read the history.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "parley-profile")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "profile")

	s, err := store.Create(ctx, dir, store.Options{}) // no passphrase: key in profile.key
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	group := store.GroupID("an MLS group id")
	chat := store.ChatIDFromGroup(group)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	bob := identity.AccountID("bobbobbobbobbobbobbobbobbobbobbo") // Bob's account id
	_, err = s.Apply(ctx, &store.Batch{
		Now:           now,
		Conversations: []*store.Conversation{{ID: chat, Kind: store.ChatDirect, Group: group, Name: "Bob", CreatedAt: now}},
		GroupStates:   []store.GroupStateUpdate{{Group: group, State: store.GroupState("serialized MLS state")}},
		Messages: []*store.Message{
			{ID: store.MessageID{1}, Chat: chat, Seq: 1, Sender: bob, Kind: store.KindText, Body: []byte("hi"), State: store.StateReceived, SentAt: now},
			{ID: store.MessageID{2}, Chat: chat, Seq: 2, Sender: bob, Kind: store.KindText, Body: []byte("how are you?"), State: store.StateReceived, SentAt: now},
		},
		Cursors: []store.CursorUpdate{{Stream: store.GroupStream(group), Seq: 2}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	page, err := s.History(ctx, chat, store.HistoryQuery{Limit: 50})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range page.Messages {
		fmt.Printf("%d %s...: %s\n", m.Seq, m.Sender[:6], m.Body)
	}
	unread, _ := s.UnreadCounts(ctx)
	fmt.Println("unread:", unread[chat])
	// Output:
	// 1 bobbob...: hi
	// 2 bobbob...: how are you?
	// unread: 2
}
